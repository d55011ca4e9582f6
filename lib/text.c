/* SPDX-License-Identifier: Apache-2.0 */
/* Small text codecs shared by the parsers and clients: UTF-8 validation, hex digits, base64. */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

size_t kilt_utf8_valid_prefix(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (!(w & 0x8080808080808080ull)) {
				i += 8;
				continue;
			}
		}
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if ((c & 0xE0) == 0xC0) {
			n = 2, cp = c & 0x1Fu, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			n = 3, cp = c & 0x0Fu, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			n = 4, cp = c & 0x07u, min = 0x10000;
		} else {
			return i;
		}
		if (len - i < n)
			return i;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3Fu);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += n;
	}
	return len;
}

int kilt_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int kilt_base64_decode(const char *in, size_t len, char **ret, size_t *ret_len,
		       struct kilt_error *err)
{
	_cleanup_free_ char *out = xmalloc(len / 4 * 3 + 4);
	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	bool padding = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			padding = true;
			continue;
		}
		int v = b64_value(c);
		if (v < 0 || padding)
			return kilt_error_setf(err, -EINVAL,
					       "base64: unexpected character at offset %zu", i);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (bits >= 6)
		return kilt_error_setf(err, -EINVAL, "base64: truncated input");
	out[o] = '\0';
	if (ret_len)
		*ret_len = o;
	*ret = steal_pointer(&out);
	return 0;
}

/* The base64 digit of x (0..63), as a constant expression. */
#define B64(x)                                                                                     \
	(char)((x) < 26	   ? 'A' + (x)                                                             \
	       : (x) < 52  ? 'a' + (x)-26                                                          \
	       : (x) < 62  ? '0' + (x)-52                                                          \
	       : (x) == 62 ? '+'                                                                   \
			   : '/')
/* The two digits of every 12 bits: one lookup for half of 3 bytes. */
#define PAIR(x)                                                                                    \
	{                                                                                          \
		B64((x) >> 6), B64((x)&63)                                                         \
	}
#define PAIRS4(x) PAIR(x), PAIR((x) + 1), PAIR((x) + 2), PAIR((x) + 3)
#define PAIRS16(x) PAIRS4(x), PAIRS4((x) + 4), PAIRS4((x) + 8), PAIRS4((x) + 12)
#define PAIRS64(x) PAIRS16(x), PAIRS16((x) + 16), PAIRS16((x) + 32), PAIRS16((x) + 48)
#define PAIRS256(x) PAIRS64(x), PAIRS64((x) + 64), PAIRS64((x) + 128), PAIRS64((x) + 192)
#define PAIRS1024(x) PAIRS256(x), PAIRS256((x) + 256), PAIRS256((x) + 512), PAIRS256((x) + 768)
static const char b64_pairs[4096][2] = { PAIRS1024(0), PAIRS1024(1024), PAIRS1024(2048),
					 PAIRS1024(3072) };

/* The 4 digits of the 3 bytes at b, to o (b's bytes are read before o is written: o may be b). */
static inline void b64_triple(const unsigned char *b, char *o)
{
	uint32_t v = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
	memcpy(o, b64_pairs[v >> 12], 2);
	memcpy(o + 2, b64_pairs[v & 4095], 2);
}

/* The 4 digits, padding included, of the last `rest` (1 or 2) bytes at b, to o (read first). */
static inline void b64_tail(const unsigned char *b, size_t rest, char *o)
{
	uint32_t v = (uint32_t)b[0] << 16;
	if (rest == 2)
		v |= (uint32_t)b[1] << 8;
	memcpy(o, b64_pairs[v >> 12], 2);
	o[2] = rest == 2 ? b64_pairs[v & 4095][0] : '=';
	o[3] = '=';
}

size_t kilt_base64_encode_into(const void *in, size_t len, char *out)
{
	const unsigned char *s = in;
	char *o = out;
	size_t i = 0;
	/* six bytes at a time from a big-endian load of eight */
	for (; len - i >= 8; i += 6, o += 8) {
		uint64_t v;
		memcpy(&v, s + i, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		memcpy(o, b64_pairs[v >> 52], 2);
		memcpy(o + 2, b64_pairs[(v >> 40) & 4095], 2);
		memcpy(o + 4, b64_pairs[(v >> 28) & 4095], 2);
		memcpy(o + 6, b64_pairs[(v >> 16) & 4095], 2);
	}
	for (; len - i >= 3; i += 3, o += 4)
		b64_triple(s + i, o);
	if (i < len) {
		b64_tail(s + i, len - i, o);
		o += 4;
	}
	return (size_t)(o - out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define B64_AVX2 1

/* Eight triples at a time, from the end, while at least eight of the `k` left: triples k-8..k-5
 * and k-4..k-1 are read 16 bytes each (12 of them used; the 4 after are the next triples',
 * already read or encoded) into the two halves of a register, and their 32 digits written from
 * byte 4(k-8), past every byte of the triples before. Returns the triples left (fewer than
 * eight). */
__attribute__((target("avx2"))) static size_t in_place_avx2(char *buf, size_t k)
{
	/* each triple [a, b, c] as the 32 bits b a c b (little-endian lanes), in each half */
	const __m256i spread = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
						1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
	/* a digit's offset from its 6-bit value, at index 0 for 26..51, 1..12 for 52..63 (the
	 * value less 51, saturated), 13 for 0..25 */
#define B64_OFFSETS                                                                                \
	'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,  \
		'0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0
	const __m256i offsets = _mm256_setr_epi8(B64_OFFSETS, B64_OFFSETS);
#undef B64_OFFSETS
	for (; k >= 8; k -= 8) {
		const char *p = buf + 3 * (k - 8);
		__m256i in = _mm256_inserti128_si256(
			_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)p)),
			_mm_loadu_si128((const __m128i *)(const void *)(p + 12)), 1);
		in = _mm256_shuffle_epi8(in, spread);
		/* the four 6-bit values of each lane, one a byte in order: the first and third
		 * shifted down by a high multiply, the second and fourth up by a low one */
		__m256i hi = _mm256_mulhi_epu16(_mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00)),
						_mm256_set1_epi32(0x04000040));
		__m256i lo = _mm256_mullo_epi16(_mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0)),
						_mm256_set1_epi32(0x01000010));
		__m256i v = _mm256_or_si256(hi, lo);
		__m256i idx = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
		idx = _mm256_or_si256(idx,
				      _mm256_and_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(26), v),
						       _mm256_set1_epi8(13)));
		__m256i digits = _mm256_add_epi8(v, _mm256_shuffle_epi8(offsets, idx));
		_mm256_storeu_si256((__m256i *)(void *)(buf + 4 * (k - 8)), digits);
	}
	return k;
}
#endif

/* From the end: the 4 digits of the k-th 3 bytes go to [4k, 4k + 4), past every byte of the
 * ones before it, which are all that is left to read. */
static size_t in_place(char *buf, size_t len, bool simd)
{
	unsigned char *s = (unsigned char *)buf;
	size_t k = len / 3, rest = len % 3;
	if (rest)
		b64_tail(s + 3 * k, rest, buf + 4 * k);
#ifdef B64_AVX2
	if (simd)
		k = in_place_avx2(buf, k);
#else
	(void)simd;
#endif
	/* two at a time: the 6 bytes are the last of a big-endian load of 8 ending with them */
	for (; k >= 3; k -= 2) {
		uint64_t v;
		memcpy(&v, s + 3 * k - 8, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		char *o = buf + 4 * (k - 2);
		memcpy(o, b64_pairs[(v >> 36) & 4095], 2);
		memcpy(o + 2, b64_pairs[(v >> 24) & 4095], 2);
		memcpy(o + 4, b64_pairs[(v >> 12) & 4095], 2);
		memcpy(o + 6, b64_pairs[v & 4095], 2);
	}
	for (; k > 0; k--)
		b64_triple(s + 3 * (k - 1), buf + 4 * (k - 1));
	return (len + 2) / 3 * 4;
}

size_t kilt_base64_encode_in_place(char *buf, size_t len)
{
#ifdef B64_AVX2
	return in_place(buf, len, __builtin_cpu_supports("avx2"));
#else
	return in_place(buf, len, false);
#endif
}

size_t kilt_base64_encode_in_place_scalar(char *buf, size_t len)
{
	return in_place(buf, len, false);
}

char *kilt_base64_encode(const void *in, size_t len)
{
	char *out = xmalloc((len + 2) / 3 * 4 + 1);
	out[kilt_base64_encode_into(in, len, out)] = '\0';
	return out;
}
