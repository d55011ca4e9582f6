/* SPDX-License-Identifier: Apache-2.0 */
/* Two test libraries for the Falco stand-in, built from this file: libkilt-outer.so, which the
 * stand-in needs, and libkilt-inner.so, which only libkilt-outer.so needs. Like a real build's
 * libraries that need others, they show whether a bundled program's search path also reaches
 * its libraries' own dependencies. */
#ifdef KILT_OUTER
int kilt_standin_inner(void);
int kilt_standin_outer(void);

int kilt_standin_outer(void)
{
	return kilt_standin_inner() + 1;
}
#else
int kilt_standin_inner(void);

int kilt_standin_inner(void)
{
	return 1;
}
#endif
