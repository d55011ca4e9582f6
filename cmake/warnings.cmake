# SPDX-License-Identifier: Apache-2.0
# Warning, hardening and sanitizer flags shared by every target (STYLE.md "Build, format, lint").
set(KILT_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wcast-qual -Wwrite-strings -Wvla -Wimplicit-fallthrough)
# -Wconversion applies to lib/ and runtime/ only (see kilt_strict_conversion()).
set(KILT_CONVERSION_WARNINGS -Wconversion -Wno-sign-conversion)

if(KILT_WERROR)
  list(APPEND KILT_WARNINGS -Werror)
endif()

add_compile_options(${KILT_WARNINGS})
# POSIX 2008 and GNU interfaces (O_CLOEXEC, pipe2, signalfd, ...) with strict -std=c17.
add_compile_definitions(_GNU_SOURCE)

if(KILT_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(KILT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT KILT_FUZZ AND NOT KILT_RUNTIME_ONLY)
  add_compile_definitions($<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=3>)
  add_compile_options(-fstack-protector-strong -fPIE)
  add_link_options(-pie -Wl,-z,relro,-z,now)
endif()

function(kilt_strict_conversion target)
  target_compile_options(${target} PRIVATE ${KILT_CONVERSION_WARNINGS})
endfunction()
