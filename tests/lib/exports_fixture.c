/* SPDX-License-Identifier: Apache-2.0 */
/* A library that exports two names without the kilt_ prefix, for tests/lib/exports.sh to catch. */
int kilt_fixture_ok(void);
int leaked_name(void);

int leaked_table[2] = { 1, 2 };

static int local_only(void)
{
	return 3;
}

int kilt_fixture_ok(void)
{
	return local_only();
}

int leaked_name(void)
{
	return leaked_table[0];
}
