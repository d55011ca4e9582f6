# SPDX-License-Identifier: Apache-2.0
# The two inputs of `build-agent-image.sh --falco ... --pdig ...` for users with internet access and
# a container builder (BuildKit): pdig compiled statically (musl) at the pinned commit against the
# pinned falcosecurity/libs commit, and the Falco 0.32.2 release tarball. It cannot run in kilt's
# own CI, which has no network beyond package registries; docs/falco.md says how to use it:
#
#   docker build -f deploy/images/falco-inputs.Dockerfile --output type=local,dest=build/falco-inputs .
#   deploy/images/build-agent-image.sh --falco build/falco-inputs/falco-0.32.2-x86_64.tar.gz \
#       --pdig build/falco-inputs/pdig --dest docker://REGISTRY/kilt/falco:0.32.2
#
# pdig is x86-64 only: build on (or for) linux/amd64.

# pdig's last commit and the libs commit it builds against (newer libs do not compile with it).
ARG PDIG_COMMIT=fc679b8
ARG LIBS_COMMIT=2258aba1
ARG FALCO_VERSION=0.32.2
# Optional: the sha256 of the Falco tarball, checked when given.
ARG FALCO_SHA256=""

FROM --platform=linux/amd64 alpine:3.16 AS pdig
ARG PDIG_COMMIT
ARG LIBS_COMMIT
RUN apk add --no-cache build-base cmake git linux-headers
RUN git clone https://github.com/falcosecurity/pdig.git /src/pdig && \
    git -C /src/pdig checkout "$PDIG_COMMIT" && \
    git clone https://github.com/falcosecurity/libs.git /src/libs && \
    git -C /src/libs checkout "$LIBS_COMMIT"
RUN cmake -S /src/pdig -B /build -DCMAKE_BUILD_TYPE=Release -DMUSL_OPTIMIZED_BUILD=True \
        -DFALCO_LIBS_DIR=/src/libs && \
    cmake --build /build --target pdig -j "$(nproc)" && \
    strip /build/pdig && \
    ! readelf -lW /build/pdig | grep -q INTERP

FROM --platform=linux/amd64 alpine:3.16 AS falco
ARG FALCO_VERSION
ARG FALCO_SHA256
RUN apk add --no-cache curl && \
    curl -fsSLo "/falco-$FALCO_VERSION-x86_64.tar.gz" \
        "https://download.falco.org/packages/bin/x86_64/falco-$FALCO_VERSION-x86_64.tar.gz" && \
    if [ -n "$FALCO_SHA256" ]; then \
        echo "$FALCO_SHA256  /falco-$FALCO_VERSION-x86_64.tar.gz" | sha256sum -c -; fi

FROM scratch
ARG FALCO_VERSION
COPY --from=pdig /build/pdig /pdig
COPY --from=falco /falco-$FALCO_VERSION-x86_64.tar.gz /
