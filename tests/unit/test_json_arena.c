/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the per-thread arenas behind jansson's allocator (kilt-json-arena.h): values of
 * a request come from the arena and go with it, values made outside or while suspended are
 * malloc's and survive it, a released arena is poisoned under AddressSanitizer, and the Pod
 * engine run inside an arena keeps nothing in it (the recipe's template cache outlives the
 * request). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static int setup(void **state)
{
	(void)state;
	kilt_json_arena_install();
	return 0;
}

static void test_json_arena__values_come_and_go(void **state)
{
	(void)state;
	json_t *outside = json_pack("{s:[i,s]}", "a", 1, "b");
	assert_false(kilt_json_arena_holds(outside));
	kilt_json_arena_begin();
	json_t *inside = json_pack("{s:s, s:o}", "key", "value", "outside", json_incref(outside));
	assert_true(kilt_json_arena_holds(inside));
	assert_true(kilt_json_arena_holds(json_object_get(inside, "key")));
	assert_true(kilt_json_arena_used() > 0);
	/* a malloc'ed value released inside goes back to malloc (LeakSanitizer sees it otherwise) */
	json_t *gone = json_string("made outside, freed inside");
	json_decref(inside);
	json_decref(outside);
	json_decref(gone);
	/* a large value that needs a chunk of its own */
	size_t n = (size_t)1 << 20;
	_cleanup_free_ char *big = xmalloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	json_t *large = json_string(big);
	assert_true(kilt_json_arena_holds(large));
	assert_int_equal(json_string_length(large), n);
	json_decref(large);
	kilt_json_arena_end();
	assert_int_equal(kilt_json_arena_used(), 0);
	/* outside a request: malloc again */
	json_t *after = json_string("after");
	assert_false(kilt_json_arena_holds(after));
	json_decref(after);
}

static void test_json_arena__suspended_values_survive(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	json_t *request = json_string("request");
	bool was = kilt_json_arena_suspend();
	assert_true(was);
	json_t *kept = json_pack("{s:s}", "kept", "past the request");
	kilt_json_arena_resume(was);
	assert_false(kilt_json_arena_holds(kept));
	assert_true(kilt_json_arena_holds(request));
	kilt_json_arena_end();
	/* the next request reuses the memory: the kept value is not in it */
	kilt_json_arena_begin();
	for (int i = 0; i < 1000; i++)
		json_decref(json_string("overwrite the arena's memory"));
	kilt_json_arena_end();
	assert_string_equal(json_string_value(json_object_get(kept, "kept")), "past the request");
	json_decref(kept);
	/* suspend outside a request says so */
	assert_false(kilt_json_arena_suspend());
	kilt_json_arena_resume(false);
	json_t *plain = json_string("plain");
	assert_false(kilt_json_arena_holds(plain));
	json_decref(plain);
}

/* What the arena has handed out since the request began, counted across a suspension and into
 * new chunks; values made while suspended are not in it. */
static void test_json_arena__used_across_chunks(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	size_t before = kilt_json_arena_used();
	json_t *first = json_string("first");
	size_t one = kilt_json_arena_used();
	assert_true(one > before);
	bool was = kilt_json_arena_suspend();
	json_t *outside = json_string("outside");
	assert_int_equal(kilt_json_arena_used(), one);
	kilt_json_arena_resume(was);
	assert_false(kilt_json_arena_holds(outside));
	json_t *second = json_string("second");
	assert_true(kilt_json_arena_holds(second));
	assert_true(kilt_json_arena_used() > one);
	/* past the first chunk (256 KiB) and the second: the older chunks' values stay */
	char text[1024];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	size_t last = kilt_json_arena_used();
	for (int i = 0; i < 1000; i++) {
		json_decref(json_string(text));
		size_t now = kilt_json_arena_used();
		assert_true(now > last);
		last = now;
	}
	assert_true(last >= (size_t)1000 * sizeof(text));
	assert_true(kilt_json_arena_holds(first));
	assert_string_equal(json_string_value(first), "first");
	assert_string_equal(json_string_value(second), "second");
	kilt_json_arena_end();
	assert_int_equal(kilt_json_arena_used(), 0);
	json_decref(outside);
}

static void test_json_arena__released_is_poisoned(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	json_t *v = json_string("kept past its request by mistake");
	kilt_json_arena_end();
#ifdef TEST_ASAN
	/* reading v now is reported by AddressSanitizer */
	assert_true(__asan_address_is_poisoned(v));
#else
	/* without ASan, the memory is kept for the thread's next request */
	assert_true(kilt_json_arena_holds(v));
#endif
}

static void *other_thread(void *arg)
{
	(void)arg;
	/* another thread without an arena allocates from malloc while this one has one */
	json_t *v = json_string("other thread");
	bool holds = kilt_json_arena_holds(v);
	json_decref(v);
	kilt_json_arena_begin();
	json_t *w = json_string("its own arena");
	bool own = kilt_json_arena_holds(w);
	kilt_json_arena_end();
	return (void *)(uintptr_t)(!holds && own);
}

static void test_json_arena__per_thread(void **state)
{
	(void)state;
	kilt_json_arena_begin();
	json_t *mine = json_string("mine");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	void *ok = NULL;
	pthread_join(t, &ok);
	assert_true((uintptr_t)ok);
	assert_true(kilt_json_arena_holds(mine));
	kilt_json_arena_end();
}

/* A tree of the arena let go at once: the references it holds to values outside the arena are
 * dropped once per reference, as json_decref would, also through a subtree it holds twice. */
static void test_json_arena__decref_tree(void **state)
{
	(void)state;
	json_t *outside = json_string("outside");
	json_t *shared_outside = json_pack("{s:s}", "held", "twice");
	kilt_json_arena_begin();
	json_t *shared = json_pack("[O]", shared_outside); /* in the arena */
	json_t *tree = json_pack("{s:O, s:[O, O], s:O, s:{s:i}}", "a", outside, "b", shared, shared,
				 "c", outside, "d", "n", 1);
	json_decref(shared);
	assert_true(kilt_json_arena_holds(tree));
	assert_int_equal(outside->refcount, 3);
	assert_int_equal(shared_outside->refcount, 2);
	json_t *kept = json_incref(json_object_get(tree, "d"));
	kilt_json_arena_decref(tree);
	assert_int_equal(outside->refcount, 1);
	assert_int_equal(shared_outside->refcount, 1);
	assert_int_equal(kept->refcount, 1); /* still held here */
	kilt_json_arena_decref(kept);
	kilt_json_arena_end();
	/* outside an arena: json_decref (LeakSanitizer sees a value left behind) */
	json_t *plain = json_pack("{s:o}", "o", outside);
	kilt_json_arena_decref(plain);
	kilt_json_arena_decref(shared_outside);
	kilt_json_arena_decref(NULL);
	kilt_json_arena_decref(json_true());
}

/* A review let go with kilt_admission_review_done: values from outside the arena put anywhere
 * in its tree (a leaf of an object, an array's element, a container from outside holding more)
 * get their references back; the review's own values are left to the arena. */
static void test_json_arena__review_done_drops_outside(void **state)
{
	(void)state;
	static const char REVIEW[] =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":"
		"{\"uid\":\"u1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
		"\"operation\":\"CREATE\",\"namespace\":\"shop\",\"object\":{\"metadata\":{"
		"\"name\":"
		"\"p\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"args\":[\"a\"]}"
		"]}}}}";
	json_t *leaf = json_string("outside leaf");
	json_t *tree = json_pack("{s:[s, i]}", "list", "x", 1);
	json_t *inner = json_object_get(tree, "list");
	kilt_json_arena_begin();
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_admission_review_parse(REVIEW, strlen(REVIEW), &rv, &err), 0);
	json_t *pod = (json_t *)(uintptr_t)rv.object;
	assert_true(kilt_json_arena_holds(pod));
	json_t *meta = json_object_get(pod, "metadata");
	json_t *c = json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
	json_object_set(meta, "outside", leaf);
	json_array_append(json_object_get(c, "args"), leaf);
	json_object_set(c, "tree", tree);
	json_object_set(meta, "inner", inner); /* inside an outside container, and here too */
	assert_int_equal(leaf->refcount, 3);
	assert_int_equal(tree->refcount, 2);
	assert_int_equal(inner->refcount, 2);
	kilt_admission_review_done(&rv);
	assert_int_equal(leaf->refcount, 1);
	assert_int_equal(tree->refcount, 1);
	assert_int_equal(inner->refcount, 1);
	kilt_json_arena_end();
	json_decref(tree);
	json_decref(leaf);
}

/* ---- the Pod engine inside an arena -------------------------------------------------------- */

static const char RECIPE[] =
	"platforms: [ linux/amd64 ]\n"
	"deploy {\n"
	"  entrypoint: [ /kilt/bin/kilt-launch, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: kilt-agent, image: \"example/agent:1\", volumes: [ /kilt ] } ]\n"
	"  environment: { META: \"image=\"${original.image}\",name=\"${original.name}, RATIO: "
	"0.25, COUNT: 3 }\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"}\n";

static const char POD[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"web-\","
	"\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":"
	"\"nginx:1\",\"command\":[\"/web\"],\"env\":[{\"name\":\"A\",\"value\":\"1\"}]},{\"name\":"
	"\"side\",\"image\":\"busybox\",\"command\":[\"sleep\"],\"args\":[\"1d\"]}]}}";

/* The patch and warnings of POD as text (malloc's). */
static char *mutate(const struct kilt_recipe *recipe)
{
	struct kilt_k8s_recipe kr = { .name = "agent", .recipe = recipe };
	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.recipes = &kr;
	o.n_recipes = 1;
	json_t *pod = json_loads(POD, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(pod);
	struct kilt_k8s_namespace ns = { .name = "shop" };
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_k8s_mutate_owned(pod, &ns, &o, &res, &err), 0);
	json_t *both = json_pack("{s:O, s:O}", "patch", res.patch, "warnings", res.warnings);
	char *text = kilt_json_dumps(both, JSON_COMPACT);
	json_decref(both);
	kilt_k8s_result_done(&res);
	assert_non_null(text);
	return text;
}

static struct kilt_recipe *load(void)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(RECIPE, sizeof(RECIPE) - 1, "agent", &r, &err), 0);
	return r;
}

static void test_json_arena__engine_keeps_nothing_in_it(void **state)
{
	(void)state;
	struct kilt_recipe *plain = load();
	_cleanup_free_ char *want = mutate(plain);
	kilt_recipe_free(plain);
	assert_non_null(strstr(want, "\"op\":\"add\""));

	/* The first review fills the recipe's template cache from inside an arena; the second
	 * reads it after that arena was released and its memory reused. */
	struct kilt_recipe *recipe = load();
	kilt_json_arena_begin();
	_cleanup_free_ char *first = mutate(recipe);
	kilt_json_arena_end();
	kilt_json_arena_begin();
	for (int i = 0; i < 4000; i++)
		json_decref(json_pack("{s:s}", "overwrite", "the arena's memory"));
	_cleanup_free_ char *second = mutate(recipe);
	kilt_json_arena_end();
	_cleanup_free_ char *third = mutate(recipe);
	kilt_recipe_free(recipe);
	assert_string_equal(first, want);
	assert_string_equal(second, want);
	assert_string_equal(third, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_arena__values_come_and_go),
		cmocka_unit_test(test_json_arena__suspended_values_survive),
		cmocka_unit_test(test_json_arena__used_across_chunks),
		cmocka_unit_test(test_json_arena__released_is_poisoned),
		cmocka_unit_test(test_json_arena__per_thread),
		cmocka_unit_test(test_json_arena__decref_tree),
		cmocka_unit_test(test_json_arena__review_done_drops_outside),
		cmocka_unit_test(test_json_arena__engine_keeps_nothing_in_it),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
