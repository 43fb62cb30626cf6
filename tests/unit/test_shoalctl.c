// SPDX-License-Identifier: Apache-2.0
/* shoalctl pure parts: kubeconfig, resource resolution, the client-side apply patch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "tools/shoalctl/shoalctl.h"

/* ---- kubeconfig ---- */

static const char kubeconfig[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: dev\n"
	"clusters:\n"
	"- name: c-dev\n"
	"  cluster:\n"
	"    server: https://10.0.0.1:6443\n"
	"    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
	"- name: c-lab\n"
	"  cluster:\n"
	"    server: http://127.0.0.1:7000\n"
	"    certificate-authority: certs/ca.pem\n"
	"    insecure-skip-tls-verify: true\n"
	"contexts:\n"
	"- name: dev\n"
	"  context: {cluster: c-dev, user: alice, namespace: team-a}\n"
	"- name: lab\n"
	"  context: {cluster: c-lab, user: bob}\n"
	"- name: broken\n"
	"  context: {cluster: nowhere, user: alice}\n"
	"users:\n"
	"- name: alice\n"
	"  user: {token: s3cret}\n"
	"- name: bob\n"
	"  user:\n"
	"    client-certificate: /etc/bob.crt\n"
	"    client-key: bob.key\n";

static void test_kubeconfig_current_context(void **state)
{
	struct ctl_config c;
	struct err e = {};

	assert_int_equal(ctl_kubeconfig_parse(kubeconfig, strlen(kubeconfig), "/home/u/.kube",
					      NULL, &c, &e),
			 0);
	assert_string_equal(c.server, "https://10.0.0.1:6443");
	assert_string_equal(c.token, "s3cret");
	assert_string_equal(c.namespace, "team-a");
	assert_string_equal(c.ca_data, "-----BEGIN CERTIFICATE-----\n");
	assert_null(c.ca_file);
	assert_false(c.insecure);
	ctl_config_done(&c);
}

static void test_kubeconfig_explicit_context(void **state)
{
	struct ctl_config c;
	struct err e = {};

	assert_int_equal(ctl_kubeconfig_parse(kubeconfig, strlen(kubeconfig), "/home/u/.kube",
					      "lab", &c, &e),
			 0);
	assert_string_equal(c.server, "http://127.0.0.1:7000");
	/* relative paths are relative to the kubeconfig's directory */
	assert_string_equal(c.ca_file, "/home/u/.kube/certs/ca.pem");
	assert_string_equal(c.cert_file, "/etc/bob.crt");
	assert_string_equal(c.key_file, "/home/u/.kube/bob.key");
	assert_true(c.insecure);
	assert_null(c.token);
	assert_null(c.namespace);
	ctl_config_done(&c);
}

static void test_kubeconfig_errors(void **state)
{
	struct ctl_config c;
	struct err e = {};
	static const char empty_ctx[] = "apiVersion: v1\nkind: Config\nclusters: []\n";
	static const char bad_b64[] =
		"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
		"clusters: [{name: c, cluster: {server: 'https://h', "
		"certificate-authority-data: '!!notbase64'}}]\n";

	assert_int_equal(ctl_kubeconfig_parse(kubeconfig, strlen(kubeconfig), "", "nope", &c, &e),
			 -ENOENT);
	assert_non_null(strstr(e.message, "context \"nope\" not found"));
	e = (struct err){};
	assert_int_equal(ctl_kubeconfig_parse(kubeconfig, strlen(kubeconfig), "", "broken", &c,
					      &e),
			 -ENOENT);
	assert_non_null(strstr(e.message, "cluster \"nowhere\""));
	/* no current-context: nothing configured, not an error */
	assert_int_equal(ctl_kubeconfig_parse(empty_ctx, strlen(empty_ctx), "", NULL, &c, &e), 0);
	assert_null(c.server);
	assert_int_equal(ctl_kubeconfig_parse("", 0, "", NULL, &c, &e), 0);
	assert_int_equal(ctl_kubeconfig_parse(bad_b64, strlen(bad_b64), "", NULL, &c, &e),
			 -EINVAL);
	assert_int_equal(ctl_kubeconfig_parse("a: [", 4, "", NULL, &c, &e), -EINVAL);
}

/* ---- resources ---- */

static cJSON *discovery(void)
{
	static const char text[] =
		"[{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":["
		" {\"name\":\"pods\",\"singularName\":\"pod\",\"namespaced\":true,\"kind\":\"Pod\","
		"  \"shortNames\":[\"po\"],\"verbs\":[\"get\",\"list\"]},"
		" {\"name\":\"pods/status\",\"singularName\":\"\",\"namespaced\":true,"
		"  \"kind\":\"Pod\"},"
		" {\"name\":\"services\",\"singularName\":\"service\",\"namespaced\":true,"
		"  \"kind\":\"Service\",\"shortNames\":[\"svc\"]},"
		" {\"name\":\"nodes\",\"singularName\":\"\",\"namespaced\":false,\"kind\":\"Node\","
		"  \"shortNames\":[\"no\"]},"
		" {\"name\":\"events\",\"singularName\":\"event\",\"namespaced\":true,"
		"  \"kind\":\"Event\",\"shortNames\":[\"ev\"]}]},"
		"{\"kind\":\"APIResourceList\",\"groupVersion\":\"apps/v1\",\"resources\":["
		" {\"name\":\"deployments\",\"singularName\":\"deployment\",\"namespaced\":true,"
		"  \"kind\":\"Deployment\",\"shortNames\":[\"deploy\"]},"
		" {\"name\":\"deployments/scale\",\"namespaced\":true,\"kind\":\"Scale\","
		"  \"group\":\"autoscaling\",\"version\":\"v1\"},"
		" {\"name\":\"replicasets\",\"singularName\":\"replicaset\",\"namespaced\":true,"
		"  \"kind\":\"ReplicaSet\",\"shortNames\":[\"rs\"]}]},"
		"{\"kind\":\"APIResourceList\",\"groupVersion\":\"events.k8s.io/v1\",\"resources\":["
		" {\"name\":\"events\",\"singularName\":\"event\",\"namespaced\":true,"
		"  \"kind\":\"Event\",\"shortNames\":[\"ev\"]}]}]";
	cJSON *j = cJSON_Parse(text);

	assert_non_null(j);
	return j;
}

static void expect(const cJSON *lists, const char *arg, const char *group, const char *name)
{
	struct ctl_resource r;
	struct err e = {};

	assert_int_equal(ctl_resource_resolve(lists, arg, &r, &e), 0);
	assert_string_equal(r.group, group);
	assert_string_equal(r.name, name);
}

static void test_resource_resolve(void **state)
{
	_cleanup_json_ cJSON *lists = discovery();
	struct ctl_resource r;
	struct err e = {};

	expect(lists, "pods", "", "pods");
	expect(lists, "pod", "", "pods");
	expect(lists, "po", "", "pods");
	expect(lists, "Pod", "", "pods");
	expect(lists, "PODS", "", "pods");
	expect(lists, "svc", "", "services");
	expect(lists, "deploy", "apps", "deployments");
	expect(lists, "deployments.apps", "apps", "deployments");
	expect(lists, "deployment.v1.apps", "apps", "deployments");
	expect(lists, "rs", "apps", "replicasets");
	/* the core group wins an unqualified name; a qualified one picks its group */
	expect(lists, "events", "", "events");
	expect(lists, "events.events.k8s.io", "events.k8s.io", "events");

	assert_int_equal(ctl_resource_resolve(lists, "pods", &r, &e), 0);
	assert_string_equal(r.kind, "Pod");
	assert_string_equal(r.version, "v1");
	assert_true(r.namespaced);
	/* empty singularName: the lower-cased kind */
	assert_int_equal(ctl_resource_resolve(lists, "node", &r, &e), 0);
	assert_string_equal(r.singular, "node");
	assert_false(r.namespaced);

	assert_int_equal(ctl_resource_resolve(lists, "widgets", &r, &e), -ENOENT);
	assert_string_equal(e.message, "the server doesn't have a resource type \"widgets\"");
	assert_int_equal(ctl_resource_resolve(lists, "pods/status", &r, &e), -ENOENT);
	assert_int_equal(ctl_resource_resolve(lists, "scale", &r, &e), -ENOENT);
	assert_int_equal(ctl_resource_resolve(lists, "deployments.batch", &r, &e), -ENOENT);
}

static void test_resource_by_kind_and_path(void **state)
{
	_cleanup_json_ cJSON *lists = discovery();
	_cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
	struct ctl_resource r;
	struct err e = {};
	char ref[64];

	assert_int_equal(ctl_resource_by_kind(lists, "apps/v1", "Deployment", &r, &e), 0);
	assert_string_equal(r.name, "deployments");
	assert_int_equal(ctl_resource_path(&r, "prod", "web", &p1), 0);
	assert_string_equal(p1, "/apis/apps/v1/namespaces/prod/deployments/web");
	assert_int_equal(ctl_resource_path(&r, NULL, NULL, &p2), 0);
	assert_string_equal(p2, "/apis/apps/v1/deployments");
	ctl_resource_ref(&r, ref, sizeof(ref));
	assert_string_equal(ref, "deployment.apps");

	assert_int_equal(ctl_resource_by_kind(lists, "v1", "Node", &r, &e), 0);
	/* cluster-scoped: a namespace is never put in the path */
	assert_int_equal(ctl_resource_path(&r, "default", "n1", &p3), 0);
	assert_string_equal(p3, "/api/v1/nodes/n1");
	ctl_resource_ref(&r, ref, sizeof(ref));
	assert_string_equal(ref, "node");

	assert_int_equal(ctl_resource_by_kind(lists, "v1", "Pod", &r, &e), 0);
	assert_int_equal(ctl_resource_path(&r, "default", NULL, &p4), 0);
	assert_string_equal(p4, "/api/v1/namespaces/default/pods");

	assert_int_equal(ctl_resource_by_kind(lists, "apps/v1", "Pod", &r, &e), -ENOENT);
	assert_int_equal(ctl_resource_by_kind(lists, "v2", "Pod", &r, &e), -ENOENT);
	assert_non_null(strstr(e.message, "kind \"Pod\" in version \"v2\""));
}

/* ---- 3-way patch ---- */

static char *patch_text(const char *original, const char *modified, const char *current)
{
	_cleanup_json_ cJSON *o = original ? cJSON_Parse(original) : NULL;
	_cleanup_json_ cJSON *m = cJSON_Parse(modified), *c = cJSON_Parse(current), *p = NULL;

	assert_non_null(m);
	assert_non_null(c);
	assert_int_equal(ctl_patch_3way(o, m, c, &p), 0);
	return cJSON_PrintUnformatted(p);
}

#define assert_patch(o, m, c, want)                                                               \
	do {                                                                                       \
		_cleanup_free_ char *_t = patch_text(o, m, c);                                     \
		assert_string_equal(_t, want);                                                     \
	} while (0)

static void test_patch_3way(void **state)
{
	/* nothing changed; live defaults and status are not the manifest's business */
	assert_patch("{\"spec\":{\"a\":1}}", "{\"spec\":{\"a\":1}}",
		     "{\"spec\":{\"a\":1,\"default\":\"x\"},\"status\":{\"phase\":\"Running\"}}",
		     "{}");
	/* a changed and an added field */
	assert_patch("{\"spec\":{\"a\":1}}", "{\"spec\":{\"a\":2,\"b\":true}}",
		     "{\"spec\":{\"a\":1}}", "{\"spec\":{\"a\":2,\"b\":true}}");
	/* removed from the manifest since last apply: null; set by someone else: kept */
	assert_patch("{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"fe\"}}}",
		     "{\"metadata\":{\"labels\":{\"app\":\"web\"}}}",
		     "{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"fe\",\"team\":\"x\"}}}",
		     "{\"metadata\":{\"labels\":{\"tier\":null}}}");
	/* a whole subtree dropped */
	assert_patch("{\"spec\":{\"a\":1,\"sub\":{\"x\":1}}}", "{\"spec\":{\"a\":1}}",
		     "{\"spec\":{\"a\":1,\"sub\":{\"x\":1}}}", "{\"spec\":{\"sub\":null}}");
	/* already gone from live: nothing to delete */
	assert_patch("{\"spec\":{\"a\":1,\"b\":2}}", "{\"spec\":{\"a\":1}}", "{\"spec\":{\"a\":1}}",
		     "{}");
	/* lists are replaced whole (merge patch semantics) */
	assert_patch("{\"spec\":{\"l\":[1,2]}}", "{\"spec\":{\"l\":[1,3]}}",
		     "{\"spec\":{\"l\":[1,2]}}", "{\"spec\":{\"l\":[1,3]}}");
	assert_patch("{\"spec\":{\"l\":[1,2]}}", "{\"spec\":{\"l\":[1,2]}}",
		     "{\"spec\":{\"l\":[1,2]}}", "{}");
	/* no last-applied: additions and changes only, never deletions */
	assert_patch(NULL, "{\"spec\":{\"a\":1}}", "{\"spec\":{\"a\":0,\"b\":2}}",
		     "{\"spec\":{\"a\":1}}");
	/* type change: object replaced by a scalar and back */
	assert_patch("{\"x\":{\"a\":1}}", "{\"x\":5}", "{\"x\":{\"a\":1}}", "{\"x\":5}");
	assert_patch("{\"x\":5}", "{\"x\":{\"a\":1}}", "{\"x\":5}", "{\"x\":{\"a\":1}}");
	/* server defaults inside list elements do not make an unchanged list "configured" */
	assert_patch("{\"c\":[{\"name\":\"a\",\"image\":\"x\"}]}",
		     "{\"c\":[{\"name\":\"a\",\"image\":\"x\"}]}",
		     "{\"c\":[{\"name\":\"a\",\"image\":\"x\",\"imagePullPolicy\":\"Always\"}]}",
		     "{}");
	assert_patch(NULL, "{\"c\":[{\"name\":\"a\"}]}",
		     "{\"c\":[{\"name\":\"a\",\"d\":1}]}", "{}");
	/* ... but a list the manifest changed is sent whole */
	assert_patch("{\"c\":[{\"name\":\"a\",\"image\":\"x\"}]}",
		     "{\"c\":[{\"name\":\"a\",\"image\":\"y\"}]}",
		     "{\"c\":[{\"name\":\"a\",\"image\":\"x\",\"imagePullPolicy\":\"Always\"}]}",
		     "{\"c\":[{\"name\":\"a\",\"image\":\"y\"}]}");
	/* ... including one that only lost a field (still a subset of live) */
	assert_patch("{\"c\":[{\"name\":\"a\",\"command\":[\"sh\"]}]}",
		     "{\"c\":[{\"name\":\"a\"}]}",
		     "{\"c\":[{\"name\":\"a\",\"command\":[\"sh\"]}]}",
		     "{\"c\":[{\"name\":\"a\"}]}");
	/* a change and a deletion under the same parent merge into one object */
	assert_patch("{\"s\":{\"a\":1,\"b\":2}}", "{\"s\":{\"a\":3}}", "{\"s\":{\"a\":1,\"b\":2}}",
		     "{\"s\":{\"a\":3,\"b\":null}}");
}

static void test_apply_modified(void **state)
{
	_cleanup_json_ cJSON *m = cJSON_Parse(
		"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web\","
		"\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"old\"}},"
		"\"spec\":{\"z\":1,\"a\":{\"y\":2,\"b\":3}}}");
	_cleanup_json_ cJSON *mod = NULL, *orig = NULL, *again = NULL, *patch = NULL;
	const char *ann;

	assert_int_equal(ctl_apply_modified(m, &mod), 0);
	ann = ctl_json_str(mod, "metadata.annotations");
	assert_null(ann); /* an object, not a string */
	cJSON *a = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mod, "metadata"),
						 "annotations"),
		CTL_LAST_APPLIED);
	assert_true(cJSON_IsString(a));
	/* sorted keys, annotations emptied of itself, trailing newline: what kubectl stores */
	assert_string_equal(a->valuestring,
			    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},"
			    "\"name\":\"web\"},"
			    "\"spec\":{\"a\":{\"b\":3,\"y\":2},\"z\":1}}\n");

	/* applying the same manifest onto what it produced is a no-op */
	orig = ctl_apply_original(mod);
	assert_non_null(orig);
	assert_int_equal(ctl_apply_modified(m, &again), 0);
	assert_int_equal(ctl_patch_3way(orig, again, mod, &patch), 0);
	assert_null(patch->child);

	assert_null(ctl_apply_original(m)); /* "old" is not JSON */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubeconfig_current_context),
		cmocka_unit_test(test_kubeconfig_explicit_context),
		cmocka_unit_test(test_kubeconfig_errors),
		cmocka_unit_test(test_resource_resolve),
		cmocka_unit_test(test_resource_by_kind_and_path),
		cmocka_unit_test(test_patch_3way),
		cmocka_unit_test(test_apply_modified),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
