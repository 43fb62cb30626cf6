// SPDX-License-Identifier: Apache-2.0
/* status.images of the node's Node from its image store's records (daemon/node.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/node.h"

static cJSON *J(const char *s)
{
	cJSON *o = cJSON_Parse(s);

	assert_non_null(o);
	return o;
}

static void test_images_grouped_sorted(void **state)
{
	cJSON *recs = J("["
			"{\"name\":\"docker.io/library/busybox:latest\",\"digest\":\"sha256:aa\","
			"\"size\":2000000},"
			"{\"name\":\"docker.io/library/nginx:1.27\",\"digest\":\"sha256:bb\","
			"\"size\":70000000},"
			"{\"name\":\"docker.io/library/busybox:1.36\",\"digest\":\"sha256:aa\","
			"\"size\":2000000},"
			"{\"name\":\"localhost:5000/app:v1\",\"digest\":\"sha256:cc\",\"size\":500}"
			"]");
	cJSON *st = NULL;
	char *txt;

	assert_int_equal(node_images_status(recs, 50, &st), 0);
	txt = cJSON_PrintUnformatted(st);
	assert_string_equal(
	    txt, "[{\"names\":[\"docker.io/library/nginx@sha256:bb\",\"docker.io/library/"
		 "nginx:1.27\"],\"sizeBytes\":70000000},"
		 "{\"names\":[\"docker.io/library/busybox@sha256:aa\",\"docker.io/library/"
		 "busybox:latest\",\"docker.io/library/busybox:1.36\"],\"sizeBytes\":2000000},"
		 "{\"names\":[\"localhost:5000/app@sha256:cc\",\"localhost:5000/app:v1\"],"
		 "\"sizeBytes\":500}]");
	free(txt);
	cJSON_Delete(st);

	/* bounded: the largest first */
	assert_int_equal(node_images_status(recs, 1, &st), 0);
	assert_int_equal(cJSON_GetArraySize(st), 1);
	assert_string_equal(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "names"), 1)
		->valuestring,
	    "docker.io/library/nginx:1.27");
	cJSON_Delete(st);
	cJSON_Delete(recs);

	/* an empty store */
	recs = J("[]");
	assert_int_equal(node_images_status(recs, 50, &st), 0);
	assert_int_equal(cJSON_GetArraySize(st), 0);
	cJSON_Delete(st);
	cJSON_Delete(recs);
}

/* No more than 5 names per image, as the kubelet reports. */
static void test_images_names_bounded(void **state)
{
	cJSON *recs = cJSON_CreateArray(), *st = NULL;
	char buf[128];

	for (int i = 0; i < 8; i++) {
		snprintf(
		    buf, sizeof(buf),
		    "{\"name\":\"docker.io/library/x:t%d\",\"digest\":\"sha256:dd\",\"size\":9}",
		    i);
		cJSON_AddItemToArray(recs, J(buf));
	}
	assert_int_equal(node_images_status(recs, 50, &st), 0);
	assert_int_equal(cJSON_GetArraySize(st), 1);
	assert_int_equal(
	    cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "names")), 5);
	cJSON_Delete(st);
	cJSON_Delete(recs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_images_grouped_sorted),
	    cmocka_unit_test(test_images_names_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
