/* SPDX-License-Identifier: Apache-2.0 */
/* What every front end file in src/ includes: libkilt's public API and its utilities
 * (include/kilt/kilt-util.h: allocation that aborts on OOM, a bounded growable buffer, cleanup
 * attributes) under the short names the code writes. */
#ifndef KILT_SRC_UTIL_H
#define KILT_SRC_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "kilt.h"

/* libkilt's allocation, kbuf and cleanup attributes, with their short names. */
#define KILT_SHORT_NAMES
#include "kilt-util.h"

#endif
