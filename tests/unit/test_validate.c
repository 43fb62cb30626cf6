// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "api/validate.h"

static cJSON *J(const char *s)
{
	cJSON *j = cJSON_Parse(s);

	if (!j)
		fail_msg("bad test json: %s", s);
	return j;
}

/* default + validate; returns rc, e filled */
static int run(const char *kind, const char *json, const char *old, struct err *e)
{
	cJSON *o = J(json), *p = old ? J(old) : NULL;
	int r;

	memset(e, 0, sizeof(*e));
	validate_default(kind, o);
	if (p)
		validate_default(kind, p);
	r = validate_object(kind, o, p, e);
	cJSON_Delete(o);
	cJSON_Delete(p);
	return r;
}

static bool has_cause(const struct err *e, const char *type, const char *field)
{
	for (int i = 0; i < e->ncauses; i++)
		if (strcmp(e->causes[i].type, type) == 0 && strcmp(e->causes[i].field, field) == 0)
			return true;
	return false;
}

static void expect_cause(const char *kind, const char *json, const char *old, const char *type,
			 const char *field)
{
	struct err e;
	int r = run(kind, json, old, &e);

	if (r != -EINVAL || !has_cause(&e, type, field)) {
		fail_msg("%s: expected %s on %s, got rc=%d: %s", kind, type, field, r, e.message);
	}
	assert_int_equal(e.code, 422);
	assert_string_equal(e.reason, "Invalid");
}

static void expect_ok(const char *kind, const char *json, const char *old)
{
	struct err e;

	if (run(kind, json, old, &e) != 0)
		fail_msg("%s: unexpected failure: %s", kind, e.message);
}

#define META(name) "\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\"}"
#define POD_SPEC(c) "{\"containers\":[" c "]}"
#define POD(c) "{" META("web") ",\"spec\":" POD_SPEC(c) "}"
#define CTR "{\"name\":\"c\",\"image\":\"nginx:1.25\"}"

static void test_pod_defaults(void **state)
{
	cJSON *o = J("{" META("p") ",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"nginx\","
		     "\"ports\":[{\"containerPort\":80}],\"resources\":{\"limits\":{\"cpu\":\"1\"}}},"
		     "{\"name\":\"b\",\"image\":\"reg:5000/x:1.0\"},{\"name\":\"c\",\"image\":\"x:latest\"}]}}");
	cJSON *spec, *c0, *c1, *c2;

	validate_default("Pod", o);
	spec = cJSON_GetObjectItem(o, "spec");
	assert_string_equal(cJSON_GetObjectItem(spec, "restartPolicy")->valuestring, "Always");
	assert_string_equal(cJSON_GetObjectItem(spec, "dnsPolicy")->valuestring, "ClusterFirst");
	assert_string_equal(cJSON_GetObjectItem(spec, "schedulerName")->valuestring,
			    "default-scheduler");
	assert_int_equal(cJSON_GetObjectItem(spec, "terminationGracePeriodSeconds")->valueint, 30);
	c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "containers"), 0);
	c1 = cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "containers"), 1);
	c2 = cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "containers"), 2);
	assert_string_equal(cJSON_GetObjectItem(c0, "imagePullPolicy")->valuestring, "Always");
	assert_string_equal(cJSON_GetObjectItem(c1, "imagePullPolicy")->valuestring, "IfNotPresent");
	assert_string_equal(cJSON_GetObjectItem(c2, "imagePullPolicy")->valuestring, "Always");
	assert_string_equal(cJSON_GetObjectItem(c0, "terminationMessagePath")->valuestring,
			    "/dev/termination-log");
	assert_string_equal(cJSON_GetObjectItem(c0, "terminationMessagePolicy")->valuestring, "File");
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "ports"), 0), "protocol")
			->valuestring,
		"TCP");
	/* requests default to limits on pods */
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c0,
			    "resources"), "requests"), "cpu")->valuestring, "1");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), "phase")->valuestring,
			    "Pending");
	struct err e = { 0 };
	assert_int_equal(validate_object("Pod", o, NULL, &e), 0);
	cJSON_Delete(o);
}

static void test_pod_invalid(void **state)
{
	struct err e;

	expect_ok("Pod", POD(CTR), NULL);
	/* the canonical message */
	assert_int_equal(run("Pod", POD("{\"name\":\"c\"}"), NULL, &e), -EINVAL);
	assert_string_equal(e.message, "Pod \"web\" is invalid: spec.containers[0].image: Required value");
	assert_int_equal(e.ncauses, 1);
	assert_string_equal(e.causes[0].type, "FieldValueRequired");
	assert_string_equal(e.causes[0].message, "Required value");

	expect_cause("Pod", "{\"metadata\":{\"name\":\"Web_1\",\"namespace\":\"default\"},\"spec\":"
		     POD_SPEC(CTR) "}", NULL, "FieldValueInvalid", "metadata.name");
	assert_int_equal(run("Pod", "{\"metadata\":{\"name\":\"Web_1\",\"namespace\":\"default\"},"
			     "\"spec\":" POD_SPEC(CTR) "}", NULL, &e), -EINVAL);
	assert_non_null(strstr(e.message, "metadata.name: Invalid value: \"Web_1\": a lowercase RFC "
				       "1123 subdomain"));
	expect_cause("Pod", "{\"metadata\":{\"namespace\":\"default\"},\"spec\":" POD_SPEC(CTR) "}",
		     NULL, "FieldValueRequired", "metadata.name");
	expect_cause("Pod", "{\"metadata\":{\"name\":\"x\"},\"spec\":" POD_SPEC(CTR) "}", NULL,
		     "FieldValueRequired", "metadata.namespace");
	expect_cause("Pod", "{" META("web") ",\"spec\":{}}", NULL, "FieldValueRequired",
		     "spec.containers");
	expect_cause("Pod", "{" META("web") "}", NULL, "FieldValueRequired", "spec.containers");
	expect_cause("Pod", POD(CTR "," CTR), NULL, "FieldValueDuplicate", "spec.containers[1].name");
	expect_cause("Pod", POD("{\"name\":\"Bad_Name\",\"image\":\"x\"}"), NULL, "FieldValueInvalid",
		     "spec.containers[0].name");
	expect_cause("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"ports\":[{\"containerPort\":70000}]}"),
		     NULL, "FieldValueInvalid", "spec.containers[0].ports[0].containerPort");
	expect_cause("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"ports\":[{\"containerPort\":80,"
				"\"protocol\":\"ICMP\"}]}"),
		     NULL, "FieldValueNotSupported", "spec.containers[0].ports[0].protocol");
	expect_cause("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"ports\":[{}]}"), NULL,
		     "FieldValueRequired", "spec.containers[0].ports[0].containerPort");
	expect_cause("Pod", "{" META("web") ",\"spec\":{\"restartPolicy\":\"Sometimes\",\"containers\":["
		     CTR "]}}", NULL, "FieldValueNotSupported", "spec.restartPolicy");
	expect_cause("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"limits\":"
				"{\"cpu\":\"lots\"}}}"),
		     NULL, "FieldValueInvalid", "spec.containers[0].resources.limits[cpu]");
	expect_cause("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"limits\":"
				"{\"memory\":\"1Gi\"},\"requests\":{\"memory\":\"2Gi\"}}}"),
		     NULL, "FieldValueInvalid", "spec.containers[0].resources.requests[memory]");
	expect_ok("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"limits\":"
			     "{\"cpu\":\"500m\",\"memory\":\"128Mi\"},\"requests\":{\"cpu\":0.1,"
			     "\"memory\":\"1e6\"}}}"), NULL);
	expect_cause("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"volumeMounts\":[{\"name\":\"v\","
				"\"mountPath\":\"/d\"}]}"),
		     NULL, "FieldValueNotFound", "spec.containers[0].volumeMounts[0].name");
	expect_ok("Pod", "{" META("web") ",\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}],"
		  "\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"volumeMounts\":[{\"name\":\"v\","
		  "\"mountPath\":\"/d\"}]}]}}", NULL);
	expect_cause("Pod", "{" META("web") ",\"spec\":{\"volumes\":[{\"name\":\"v\"}],"
		     "\"containers\":[" CTR "]}}", NULL, "FieldValueRequired", "spec.volumes[0]");
	expect_cause("Pod", "{" META("web") ",\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{},"
		     "\"hostPath\":{\"path\":\"/x\"}}],\"containers\":[" CTR "]}}", NULL,
		     "FieldValueForbidden", "spec.volumes[0].emptyDir");
	expect_cause("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"env\":[{\"name\":\"1X\"}]}"), NULL,
		     "FieldValueInvalid", "spec.containers[0].env[0].name");
	expect_cause("Pod", "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"labels\":"
		     "{\"app\":\"-bad\"}},\"spec\":" POD_SPEC(CTR) "}", NULL, "FieldValueInvalid",
		     "metadata.labels");
	expect_cause("Pod", "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"annotations\":"
		     "{\"a/b/c\":\"x\"}},\"spec\":" POD_SPEC(CTR) "}", NULL, "FieldValueInvalid",
		     "metadata.annotations");
	expect_cause("Pod", "{" META("web") ",\"spec\":{\"tolerations\":[{\"key\":\"k\",\"operator\":"
		     "\"Exists\",\"value\":\"v\"}],\"containers\":[" CTR "]}}", NULL,
		     "FieldValueInvalid", "spec.tolerations[0].operator");
	/* several causes: bracketed list */
	assert_int_equal(run("Pod", POD("{\"name\":\"\"}"), NULL, &e), -EINVAL);
	assert_int_equal(e.ncauses, 2);
	assert_string_equal(e.message, "Pod \"web\" is invalid: [spec.containers[0].name: Required "
				       "value, spec.containers[0].image: Required value]");
}

/* wrong JSON types anywhere: causes, never a crash */
static void test_wrong_types(void **state)
{
	static const char *const docs[] = {
		"[]",
		"{\"metadata\":5}",
		"{\"metadata\":{\"name\":5,\"namespace\":[],\"labels\":[1],\"annotations\":\"x\"}}",
		"{" META("a") ",\"spec\":[]}",
		"{" META("a") ",\"spec\":{\"containers\":{}}}",
		"{" META("a") ",\"spec\":{\"containers\":[5,null,\"x\"]}}",
		"{" META("a") ",\"spec\":{\"containers\":[{\"name\":1,\"image\":true,\"ports\":\"x\","
		"\"env\":[1],\"resources\":{\"limits\":[]},\"command\":\"sh\"}]}}",
		"{" META("a") ",\"spec\":{\"replicas\":\"3\",\"selector\":\"a=b\",\"template\":5,"
		"\"strategy\":{\"rollingUpdate\":\"x\"}}}",
		"{" META("a") ",\"spec\":{\"ports\":[{\"port\":\"80\",\"targetPort\":{}}],\"selector\":[]}}",
		"{" META("a") ",\"data\":[],\"binaryData\":{\"k\":5}}",
		"{" META("a") ",\"spec\":{\"template\":{\"metadata\":[],\"spec\":{\"containers\":[{}]}},"
		"\"selector\":{\"matchLabels\":{\"a\":1}}}}",
		"{" META("a") ",\"involvedObject\":7,\"subsets\":[{\"addresses\":[{\"ip\":3}]}]}",
		"{" META("a") ",\"spec\":{\"taints\":[{}],\"podCIDRs\":[1]},\"status\":{\"capacity\":1}}",
	};
	static const char *const kinds[] = { "Pod", "Deployment", "ReplicaSet", "Job", "Service",
					     "ConfigMap", "Secret", "Namespace", "Node", "Event",
					     "Endpoints", "Unknown" };
	for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++)
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			struct err e;
			cJSON *o = J(docs[d]);
			validate_default(kinds[k], o);
			(void)validate_object(kinds[k], o, o, &e);
			cJSON_Delete(o);
		}
	expect_cause("Pod", "{" META("a") ",\"spec\":{\"containers\":[{\"name\":1,\"image\":\"x\"}]}}",
		     NULL, "FieldValueTypeInvalid", "spec.containers[0].name");
	expect_cause("Deployment", "{" META("a") ",\"spec\":{\"replicas\":\"3\"}}", NULL,
		     "FieldValueTypeInvalid", "spec.replicas");
	expect_cause("Deployment", "{" META("a") ",\"spec\":{\"replicas\":1e300}}", NULL,
		     "FieldValueTypeInvalid", "spec.replicas");
	expect_cause("Deployment", "{" META("a") ",\"spec\":{\"replicas\":1.5}}", NULL,
		     "FieldValueTypeInvalid", "spec.replicas");
}

#define TEMPLATE(labels, extra)                                                                    \
	"\"template\":{\"metadata\":{\"labels\":" labels "},\"spec\":{" extra "\"containers\":[" CTR \
	"]}}"
#define DEPLOY(sel, labels) \
	"{" META("d") ",\"spec\":{\"selector\":" sel "," TEMPLATE(labels, "") "}}"

static void test_deployment(void **state)
{
	cJSON *o = J(DEPLOY("{\"matchLabels\":{\"app\":\"web\"}}", "{\"app\":\"web\"}"));
	cJSON *spec, *st;

	validate_default("Deployment", o);
	spec = cJSON_GetObjectItem(o, "spec");
	st = cJSON_GetObjectItem(spec, "strategy");
	assert_int_equal(cJSON_GetObjectItem(spec, "replicas")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(spec, "revisionHistoryLimit")->valueint, 10);
	assert_int_equal(cJSON_GetObjectItem(spec, "progressDeadlineSeconds")->valueint, 600);
	assert_string_equal(cJSON_GetObjectItem(st, "type")->valuestring, "RollingUpdate");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "rollingUpdate"),
						"maxSurge")->valuestring, "25%");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(spec,
			    "template"), "spec"), "restartPolicy")->valuestring, "Always");
	struct err e = { 0 };
	assert_int_equal(validate_object("Deployment", o, NULL, &e), 0);
	cJSON_Delete(o);

	expect_cause("Deployment", DEPLOY("{\"matchLabels\":{\"app\":\"web\"}}", "{\"app\":\"db\"}"),
		     NULL, "FieldValueInvalid", "spec.template.metadata.labels");
	assert_int_equal(run("Deployment", DEPLOY("{\"matchLabels\":{\"app\":\"web\"}}",
						  "{\"app\":\"db\"}"), NULL, &e), -EINVAL);
	assert_non_null(strstr(e.message, "`selector` does not match template `labels`"));
	expect_cause("Deployment", DEPLOY("{}", "{\"app\":\"db\"}"), NULL, "FieldValueInvalid",
		     "spec.selector");
	expect_cause("Deployment", "{" META("d") ",\"spec\":{" TEMPLATE("{\"a\":\"b\"}", "") "}}", NULL,
		     "FieldValueRequired", "spec.selector");
	expect_cause("Deployment", "{" META("d") ",\"spec\":{\"replicas\":-1,\"selector\":"
		     "{\"matchLabels\":{\"a\":\"b\"}}," TEMPLATE("{\"a\":\"b\"}", "") "}}", NULL,
		     "FieldValueInvalid", "spec.replicas");
	expect_cause("Deployment", "{" META("d") ",\"spec\":{\"selector\":{\"matchLabels\":"
		     "{\"a\":\"b\"}}," TEMPLATE("{\"a\":\"b\"}", "\"restartPolicy\":\"Never\",") "}}",
		     NULL, "FieldValueNotSupported", "spec.template.spec.restartPolicy");
	expect_cause("Deployment", "{" META("d") ",\"spec\":{\"strategy\":{\"type\":\"Recreate\","
		     "\"rollingUpdate\":{}},\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"
		     TEMPLATE("{\"a\":\"b\"}", "") "}}", NULL, "FieldValueForbidden",
		     "spec.strategy.rollingUpdate");
	expect_cause("Deployment", "{" META("d") ",\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\","
		     "\"rollingUpdate\":{\"maxSurge\":0,\"maxUnavailable\":\"0%\"}},\"selector\":"
		     "{\"matchLabels\":{\"a\":\"b\"}}," TEMPLATE("{\"a\":\"b\"}", "") "}}", NULL,
		     "FieldValueInvalid", "spec.strategy.rollingUpdate.maxUnavailable");
	/* set-based selector */
	expect_ok("Deployment", DEPLOY("{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\","
				       "\"values\":[\"web\",\"api\"]}]}", "{\"app\":\"api\"}"), NULL);
	/* update: selector immutable */
	expect_cause("Deployment", DEPLOY("{\"matchLabels\":{\"app\":\"web\",\"v\":\"2\"}}",
					  "{\"app\":\"web\",\"v\":\"2\"}"),
		     DEPLOY("{\"matchLabels\":{\"app\":\"web\"}}", "{\"app\":\"web\"}"),
		     "FieldValueInvalid", "spec.selector");
	expect_ok("ReplicaSet", DEPLOY("{\"matchLabels\":{\"app\":\"web\"}}", "{\"app\":\"web\"}"),
		  NULL);
}

static void test_job(void **state)
{
	cJSON *o = J("{\"metadata\":{\"name\":\"pi\",\"namespace\":\"default\",\"uid\":\"u-1\"},"
		     "\"spec\":{\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":["
		     CTR "]}}}}");
	cJSON *spec;
	struct err e = { 0 };

	validate_default("Job", o);
	spec = cJSON_GetObjectItem(o, "spec");
	assert_int_equal(cJSON_GetObjectItem(spec, "completions")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(spec, "parallelism")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(spec, "backoffLimit")->valueint, 6);
	assert_string_equal(cJSON_GetObjectItem(spec, "completionMode")->valuestring, "NonIndexed");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(spec,
			    "selector"), "matchLabels"), "batch.kubernetes.io/controller-uid")
				    ->valuestring, "u-1");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
			    "metadata"), "labels"), "job-name")->valuestring, "pi");
	assert_int_equal(validate_object("Job", o, NULL, &e), 0);
	cJSON_Delete(o);

	/* restartPolicy defaults to Always, which a Job refuses */
	expect_cause("Job", "{" META("j") ",\"spec\":{\"template\":{\"spec\":{\"containers\":[" CTR
		     "]}}}}", NULL, "FieldValueNotSupported", "spec.template.spec.restartPolicy");
	assert_int_equal(run("Job", "{" META("j") ",\"spec\":{\"template\":{\"spec\":{\"containers\":["
			     CTR "]}}}}", NULL, &e), -EINVAL);
	assert_non_null(strstr(e.message, "spec.template.spec.restartPolicy: Unsupported value: "
					  "\"Always\": supported values: \"OnFailure\", \"Never\""));
	expect_cause("Job", "{" META("j") ",\"spec\":{\"parallelism\":-1,\"template\":{\"spec\":{"
		     "\"restartPolicy\":\"Never\",\"containers\":[" CTR "]}}}}", NULL,
		     "FieldValueInvalid", "spec.parallelism");
	expect_cause("Job", "{" META("j") ",\"spec\":{\"completions\":2,\"template\":{\"spec\":{"
		     "\"restartPolicy\":\"Never\",\"containers\":[" CTR "]}}}}",
		     "{" META("j") ",\"spec\":{\"completions\":1,\"template\":{\"spec\":{"
		     "\"restartPolicy\":\"Never\",\"containers\":[" CTR "]}}}}",
		     "FieldValueInvalid", "spec.completions");
	expect_cause("Job", "{" META("j") ",\"spec\":{\"template\":{\"spec\":{"
		     "\"restartPolicy\":\"OnFailure\",\"containers\":[" CTR "]}}}}",
		     "{" META("j") ",\"spec\":{\"template\":{\"spec\":{"
		     "\"restartPolicy\":\"Never\",\"containers\":[" CTR "]}}}}",
		     "FieldValueInvalid", "spec.template");
}

#define SVC(spec) "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":" spec "}"

static void test_service(void **state)
{
	cJSON *o = J(SVC("{\"selector\":{\"app\":\"web\"},\"ports\":[{\"port\":80}]}"));
	cJSON *spec, *p0;
	struct err e = { 0 };

	validate_default("Service", o);
	spec = cJSON_GetObjectItem(o, "spec");
	p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "ports"), 0);
	assert_string_equal(cJSON_GetObjectItem(spec, "type")->valuestring, "ClusterIP");
	assert_string_equal(cJSON_GetObjectItem(spec, "sessionAffinity")->valuestring, "None");
	assert_string_equal(cJSON_GetObjectItem(p0, "protocol")->valuestring, "TCP");
	assert_int_equal(cJSON_GetObjectItem(p0, "targetPort")->valueint, 80);
	assert_int_equal(validate_object("Service", o, NULL, &e), 0);
	cJSON_Delete(o);

	/* Service names are DNS-1035 labels */
	expect_cause("Service", "{\"metadata\":{\"name\":\"1web\",\"namespace\":\"default\"},\"spec\":"
		     "{\"ports\":[{\"port\":80}]}}", NULL, "FieldValueInvalid", "metadata.name");
	expect_cause("Service", SVC("{}"), NULL, "FieldValueRequired", "spec.ports");
	expect_ok("Service", SVC("{\"clusterIP\":\"None\"}"), NULL);
	/* IsValidPortNum: 0 is out of range for a Service port (Required is containerPort's) */
	expect_cause("Service", SVC("{\"ports\":[{\"port\":0}]}"), NULL, "FieldValueInvalid",
		     "spec.ports[0].port");
	expect_cause("Service", SVC("{\"ports\":[{\"port\":65536}]}"), NULL, "FieldValueInvalid",
		     "spec.ports[0].port");
	expect_cause("Service", SVC("{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":81}]}"), NULL,
		     "FieldValueRequired", "spec.ports[1].name");
	expect_cause("Service", SVC("{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":80,"
				    "\"name\":\"b\"}]}"),
		     NULL, "FieldValueDuplicate", "spec.ports[1]");
	expect_cause("Service", SVC("{\"type\":\"Magic\",\"ports\":[{\"port\":80}]}"), NULL,
		     "FieldValueNotSupported", "spec.type");
	expect_cause("Service", SVC("{\"ports\":[{\"port\":80,\"nodePort\":30080}]}"), NULL,
		     "FieldValueForbidden", "spec.ports[0].nodePort");
	expect_ok("Service", SVC("{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":30080,"
				 "\"targetPort\":\"http\"}]}"), NULL);
	expect_cause("Service", SVC("{\"ports\":[{\"port\":80,\"targetPort\":\"HTTP_X\"}]}"), NULL,
		     "FieldValueInvalid", "spec.ports[0].targetPort");
	expect_cause("Service", SVC("{\"clusterIP\":\"10.0.0.300\",\"ports\":[{\"port\":80}]}"), NULL,
		     "FieldValueInvalid", "spec.clusterIP");
	expect_cause("Service", SVC("{\"type\":\"ExternalName\"}"), NULL, "FieldValueRequired",
		     "spec.externalName");
	expect_ok("Service", SVC("{\"type\":\"ExternalName\",\"externalName\":\"db.example.com\"}"),
		  NULL);
	/* clusterIP immutable once set */
	expect_cause("Service", SVC("{\"clusterIP\":\"10.96.0.2\",\"ports\":[{\"port\":80}]}"),
		     SVC("{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":80}]}"),
		     "FieldValueInvalid", "spec.clusterIP");
	expect_ok("Service", SVC("{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":81}]}"),
		  SVC("{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":80}]}"));
}

static void test_pod_update(void **state)
{
	const char *old = "{" META("p") ",\"spec\":{\"activeDeadlineSeconds\":100,\"containers\":["
			  "{\"name\":\"c\",\"image\":\"nginx:1\"}]}}";

	expect_ok("Pod", "{" META("p") ",\"spec\":{\"activeDeadlineSeconds\":50,\"containers\":["
		  "{\"name\":\"c\",\"image\":\"nginx:2\"}]}}", old);
	expect_cause("Pod", "{" META("p") ",\"spec\":{\"activeDeadlineSeconds\":100,\"containers\":["
		     "{\"name\":\"c\",\"image\":\"nginx:1\",\"command\":[\"sh\"]}]}}", old,
		     "FieldValueForbidden", "spec");
	expect_cause("Pod", "{" META("p") ",\"spec\":{\"activeDeadlineSeconds\":200,\"containers\":["
		     "{\"name\":\"c\",\"image\":\"nginx:1\"}]}}", old, "FieldValueInvalid",
		     "spec.activeDeadlineSeconds");
	expect_cause("Pod", "{\"metadata\":{\"name\":\"q\",\"namespace\":\"default\"},\"spec\":"
		     "{\"activeDeadlineSeconds\":100,\"containers\":[{\"name\":\"c\",\"image\":"
		     "\"nginx:1\"}]}}", old, "FieldValueInvalid", "metadata.name");
	/* binding: nodeName may be set once */
	expect_ok("Pod", "{" META("p") ",\"spec\":{\"nodeName\":\"n1\",\"activeDeadlineSeconds\":100,"
		  "\"containers\":[{\"name\":\"c\",\"image\":\"nginx:1\"}]}}", old);
	expect_ok("Pod", "{" META("p") ",\"spec\":{\"tolerations\":[{\"operator\":\"Exists\"}],"
		  "\"activeDeadlineSeconds\":100,\"containers\":[{\"name\":\"c\",\"image\":\"nginx:1\"}]}}",
		  old);
}

static void test_config_and_secret(void **state)
{
	cJSON *o;
	struct err e = { 0 };

	expect_ok("ConfigMap", "{" META("c") ",\"data\":{\"a.conf\":\"x\",\"B_2\":\"y\"},"
		  "\"binaryData\":{\"bin\":\"AAEC\"}}", NULL);
	expect_cause("ConfigMap", "{" META("c") ",\"data\":{\"a/b\":\"x\"}}", NULL,
		     "FieldValueInvalid", "data");
	expect_cause("ConfigMap", "{" META("c") ",\"data\":{\"..x\":\"x\"}}", NULL,
		     "FieldValueInvalid", "data");
	expect_cause("ConfigMap", "{" META("c") ",\"data\":{\"k\":\"x\"},\"binaryData\":{\"k\":\"AA==\"}}",
		     NULL, "FieldValueInvalid", "data");
	expect_cause("ConfigMap", "{" META("c") ",\"immutable\":true,\"data\":{\"k\":\"y\"}}",
		     "{" META("c") ",\"immutable\":true,\"data\":{\"k\":\"x\"}}",
		     "FieldValueForbidden", "data");

	o = J("{" META("s") ",\"stringData\":{\"user\":\"admin\"},\"data\":{\"pw\":\"c2VjcmV0\"}}");
	validate_default("Secret", o);
	assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "Opaque");
	assert_null(cJSON_GetObjectItem(o, "stringData"));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "user")->valuestring,
			    "YWRtaW4=");
	assert_int_equal(validate_object("Secret", o, NULL, &e), 0);
	cJSON_Delete(o);
	expect_cause("Secret", "{" META("s") ",\"data\":{\"pw\":\"not base64!\"}}", NULL,
		     "FieldValueInvalid", "data[pw]");
	expect_cause("Secret", "{" META("s") ",\"type\":\"kubernetes.io/tls\",\"data\":{\"tls.crt\":"
		     "\"AA==\"}}", NULL, "FieldValueRequired", "data[tls.key]");
	expect_cause("Secret", "{" META("s") ",\"type\":\"x/y\"}", "{" META("s") ",\"type\":\"Opaque\"}",
		     "FieldValueInvalid", "type");
}

static void test_cluster_kinds(void **state)
{
	cJSON *o = J("{\"metadata\":{\"name\":\"team-a\",\"namespace\":\"x\"}}");
	struct err e = { 0 };

	validate_default("Namespace", o);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"),
			    "finalizers"), 0)->valuestring, "kubernetes");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"), "phase")->valuestring,
			    "Active");
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "namespace"));
	assert_int_equal(validate_object("Namespace", o, NULL, &e), 0);
	cJSON_Delete(o);
	/* namespaces are DNS labels: no dots */
	expect_cause("Namespace", "{\"metadata\":{\"name\":\"a.b\"}}", NULL, "FieldValueInvalid",
		     "metadata.name");
	expect_ok("Node", "{\"metadata\":{\"name\":\"node-1.example\"},\"spec\":{\"podCIDR\":"
		  "\"10.244.1.0/24\",\"taints\":[{\"key\":\"k\",\"effect\":\"NoSchedule\"}]},"
		  "\"status\":{\"capacity\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":\"110\"}}}", NULL);
	expect_cause("Node", "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"podCIDR\":\"10.244.1.0/33\"}}",
		     NULL, "FieldValueInvalid", "spec.podCIDR");
	expect_cause("Node", "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"taints\":[{\"key\":\"k\","
		     "\"effect\":\"Sometimes\"}]}}", NULL, "FieldValueNotSupported",
		     "spec.taints[0].effect");
	expect_ok("Event", "{" META("e.1") ",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\","
		  "\"namespace\":\"default\"},\"reason\":\"Started\",\"type\":\"Normal\"}", NULL);
	expect_cause("Event", "{" META("e.1") ",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\","
		     "\"namespace\":\"other\"}}", NULL, "FieldValueInvalid",
		     "involvedObject.namespace");
	expect_ok("Endpoints", "{" META("web") ",\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\"}],"
		  "\"ports\":[{\"port\":80}]}]}", NULL);
	expect_cause("Endpoints", "{" META("web") ",\"subsets\":[{\"addresses\":[{\"ip\":\"x\"}]}]}",
		     NULL, "FieldValueInvalid", "subsets[0].addresses[0].ip");
}

/* ---- tables of inputs Kubernetes accepts and rejects ---- */

struct vcase {
	const char *value; /* substituted for %s in the template */
	bool ok;
};

/* a cause on field or below it (spec.selector covers spec.selector.matchLabels) */
static bool has_field(const struct err *e, const char *field)
{
	size_t n = strlen(field);

	for (int i = 0; i < e->ncauses; i++)
		if (strncmp(e->causes[i].field, field, n) == 0 &&
		    strchr(".[", e->causes[i].field[n] ? e->causes[i].field[n] : '.'))
			return true;
	return false;
}

/* Each value in tmpl must validate (ok) or be rejected with a cause on `field` */
static void table(const char *kind, const char *tmpl, const char *field, const struct vcase *c,
		  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char json[2048];
		struct err e;
		int r;

		snprintf(json, sizeof(json), tmpl, c[i].value);
		r = run(kind, json, NULL, &e);
		if (c[i].ok && r != 0)
			fail_msg("%s: \"%s\" must be accepted, got: %s", kind, c[i].value,
				 e.message);
		if (!c[i].ok && (r != -EINVAL || !has_field(&e, field)))
			fail_msg("%s: \"%s\" must be rejected on %s, got rc=%d: %s", kind,
				 c[i].value, field, r, e.message);
	}
}
#define TABLE(kind, tmpl, field, ...)                                                              \
	do {                                                                                       \
		const struct vcase _c[] = {__VA_ARGS__};                                           \
		table(kind, tmpl, field, _c, sizeof(_c) / sizeof(_c[0]));                          \
	} while (0)

/* buf = n times c, then tail */
static const char *rep(char *buf, char c, size_t n, const char *tail)
{
	memset(buf, c, n);
	strcpy(buf + n, tail);
	return buf;
}

static void test_table_names(void **state)
{
	char l63[80], l64[80], sub253[400], sub254[400];

	rep(l63, 'a', 63, "");
	rep(l64, 'a', 64, "");
	/* 253 = 4 labels of 63 dotted (255) minus 2 */
	snprintf(sub253, sizeof(sub253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	snprintf(sub254, sizeof(sub254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
	assert_int_equal(strlen(sub253), 253);
	/* object names: DNS-1123 subdomains (Pod, ConfigMap, Deployment, ...) */
	TABLE("ConfigMap", "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"}}",
	      "metadata.name", {"a", true}, {"web-1", true}, {"a.b.c", true}, {"0abc", true},
	      {"1-2", true}, {l63, true}, {sub253, true}, {"A", false}, {"-a", false},
	      {"a-", false}, {"a_b", false}, {"a..b", false}, {".a", false}, {"a.", false},
	      {"a b", false}, {sub254, false}, {"", false});
	/* Service names: DNS-1035 labels */
	TABLE("Service",
	      "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"},\"spec\":"
	      "{\"ports\":[{\"port\":80}]}}",
	      "metadata.name", {"web", true}, {"a-1", true}, {l63, true}, {"1web", false},
	      {"web.x", false}, {"Web", false}, {"web-", false}, {l64, false});
	/* Namespace names: DNS-1123 labels (a leading digit is fine, a dot is not) */
	TABLE("Namespace", "{\"metadata\":{\"name\":\"%s\"}}", "metadata.name", {"team-a", true},
	      {"1abc", true}, {l63, true}, {"a.b", false}, {"A", false}, {l64, false});
	/* namespaces of namespaced objects */
	TABLE("ConfigMap", "{\"metadata\":{\"name\":\"c\",\"namespace\":\"%s\"}}",
	      "metadata.namespace", {"kube-system", true}, {"a.b", false}, {"-a", false});
	/* container and volume names: DNS-1123 labels */
	TABLE("Pod",
	      "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\"},\"spec\":"
	      "{\"containers\":[{\"name\":\"%s\",\"image\":\"x\"}]}}",
	      "spec.containers[0].name", {"web", true}, {"1", true}, {"a.b", false}, {"Web", false},
	      {l64, false});
	/* an ExternalName may end in a dot (fully qualified) */
	TABLE("Service",
	      "{\"metadata\":{\"name\":\"db\",\"namespace\":\"default\"},\"spec\":"
	      "{\"type\":\"ExternalName\",\"externalName\":\"%s\"}}",
	      "spec.externalName", {"db.example.com", true}, {"db.example.com.", true},
	      {"localhost", true}, {"db..example.com", false}, {"Db.example.com", false},
	      {".", false}, {"", false}, {"-db.example.com", false});
}

static void test_table_ports(void **state)
{
	char l63[80], l64[80];

	rep(l63, 'a', 63, "");
	rep(l64, 'a', 64, "");
	/* Service port names: DNS-1123 labels; kubectl create service names them "80-80" */
	TABLE("Service", SVC("{\"ports\":[{\"name\":\"%s\",\"port\":80}]}"), "spec.ports[0].name",
	      {"80-80", true}, {"8080-80", true}, {"http", true}, {"1", true}, {"a--b", true},
	      {l63, true}, {"Http", false}, {"-a", false}, {"a-", false}, {"a_b", false},
	      {"a.b", false}, {l64, false});
	/* Endpoints port names follow the Service's */
	TABLE("Endpoints",
	      "{" META("web") ",\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\"}],"
			      "\"ports\":[{\"name\":\"%s\",\"port\":80}]}]}",
	      "subsets[0].ports[0].name", {"80-80", true}, {"http", true}, {"Http", false},
	      {"a_b", false});
	/* container port names and named targetPorts: IANA service names (<= 15, a letter, no
	 * "--", no '-' at either end) */
	TABLE("Pod",
	      POD("{\"name\":\"c\",\"image\":\"x\",\"ports\":[{\"containerPort\":80,"
		  "\"name\":\"%s\"}]}"),
	      "spec.containers[0].ports[0].name", {"http", true}, {"a-1", true}, {"h2c", true},
	      {"abcdefghijklmno", true}, {"80-80", false}, {"8080", false}, {"a--b", false},
	      {"-a", false}, {"a-", false}, {"abcdefghijklmnop", false}, {"HTTP", false},
	      {"a_b", false});
	TABLE("Service", SVC("{\"ports\":[{\"port\":80,\"targetPort\":\"%s\"}]}"),
	      "spec.ports[0].targetPort", {"http", true}, {"web-8080", true}, {"80-80", false},
	      {"a--b", false}, {"Http", false}, {"abcdefghijklmnop", false});
	/* port numbers */
	TABLE("Service", SVC("{\"ports\":[{\"port\":%s}]}"), "spec.ports[0].port", {"1", true},
	      {"65535", true}, {"0", false}, {"65536", false}, {"-1", false}, {"1.5", false},
	      {"\"80\"", false});
	TABLE("Service", SVC("{\"ports\":[{\"port\":80,\"targetPort\":%s}]}"),
	      "spec.ports[0].targetPort", {"8080", true}, {"65535", true}, {"65536", false},
	      {"-1", false});
	TABLE("Pod", POD("{\"name\":\"c\",\"image\":\"x\",\"ports\":[{\"containerPort\":%s}]}"),
	      "spec.containers[0].ports[0].containerPort", {"1", true}, {"65535", true},
	      {"0", false}, {"65536", false});
	TABLE("Pod",
	      POD("{\"name\":\"c\",\"image\":\"x\",\"ports\":[{\"containerPort\":80,"
		  "\"hostPort\":%s}]}"),
	      "spec.containers[0].ports[0].hostPort", {"0", true}, {"8080", true}, {"65536", false},
	      {"-1", false});
	TABLE("Service", SVC("{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":%s}]}"),
	      "spec.ports[0].nodePort", {"30080", true}, {"0", true}, {"65536", false});
	TABLE("Service", SVC("{\"ports\":[{\"port\":80,\"appProtocol\":\"%s\"}]}"),
	      "spec.ports[0].appProtocol", {"http", true}, {"kubernetes.io/h2c", true},
	      {"a b", false}, {"-http", false});
	TABLE("Service", SVC("{\"ports\":[{\"port\":80,\"protocol\":\"%s\"}]}"),
	      "spec.ports[0].protocol", {"TCP", true}, {"UDP", true}, {"SCTP", true},
	      {"tcp", false}, {"HTTP", false});
	/* the same nodePort twice with one protocol; TCP and UDP may share it */
	expect_cause("Service",
		     SVC("{\"type\":\"NodePort\",\"ports\":[{\"name\":\"a\",\"port\":80,"
			 "\"nodePort\":30080},{\"name\":\"b\",\"port\":81,"
			 "\"nodePort\":30080}]}"),
		     NULL, "FieldValueDuplicate", "spec.ports[1].nodePort");
	expect_ok("Service",
		  SVC("{\"type\":\"NodePort\",\"ports\":[{\"name\":\"a\",\"port\":53,"
		      "\"nodePort\":30053},{\"name\":\"b\",\"port\":53,\"protocol\":\"UDP\","
		      "\"nodePort\":30053}]}"),
		  NULL);
	expect_cause("Service",
		     SVC("{\"ports\":[{\"name\":\"a\",\"port\":80},{\"name\":\"a\","
			 "\"port\":81}]}"),
		     NULL, "FieldValueDuplicate", "spec.ports[1].name");
	expect_cause("Service", SVC("{\"type\":\"LoadBalancer\",\"ports\":[{\"port\":10250}]}"),
		     NULL, "FieldValueInvalid", "spec.ports[0]");
}

static void test_table_labels(void **state)
{
	char l63[80], l64[80], k63[100], k64[100];

	rep(l63, 'a', 63, "");
	rep(l64, 'a', 64, "");
	snprintf(k63, sizeof(k63), "example.com/%s", l63);
	snprintf(k64, sizeof(k64), "example.com/%s", l64);
	/* label keys: [DNS-1123 subdomain prefix '/'] name of <= 63 [A-Za-z0-9_.-] */
	TABLE("ConfigMap",
	      "{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\",\"labels\":"
	      "{\"%s\":\"v\"}}}",
	      "metadata.labels", {"app", true}, {"App", true}, {"example.com/app", true},
	      {"a_b.c-d", true}, {"app.kubernetes.io/name", true}, {l63, true}, {k63, true},
	      {"a/b/c", false}, {"-a", false}, {"a-", false}, {"_a", false}, {"/a", false},
	      {"Example.com/a", false}, {"example.com/", false}, {l64, false}, {k64, false},
	      {"", false}, {"a b", false}, {"a:b", false});
	/* label values: empty or a name of <= 63 */
	TABLE("ConfigMap",
	      "{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\",\"labels\":"
	      "{\"k\":\"%s\"}}}",
	      "metadata.labels", {"", true}, {"v1", true}, {"A_b.C-d", true}, {"1.0", true},
	      {l63, true}, {"-a", false}, {"a-", false}, {"a b", false}, {"a/b", false},
	      {l64, false});
	/* annotation keys are checked in lower case */
	TABLE("ConfigMap",
	      "{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\",\"annotations\":"
	      "{\"%s\":\"any value at all\"}}}",
	      "metadata.annotations", {"note", true}, {"Example.com/Note", true}, {"a/b/c", false},
	      {"-a", false});
	/* a Service selector is a label map */
	TABLE("Service", SVC("{\"selector\":{\"app\":\"%s\"},\"ports\":[{\"port\":80}]}"),
	      "spec.selector", {"web", true}, {"", true}, {"a b", false}, {l64, false});
	TABLE("Pod",
	      "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\"},\"spec\":"
	      "{\"nodeSelector\":{\"%s\":\"x\"},\"containers\":[" CTR "]}}",
	      "spec.nodeSelector", {"kubernetes.io/hostname", true}, {"a/b/c", false});
}

static void test_table_quantities(void **state)
{
	/* resource.Quantity: sign, digits with an optional fraction, then a binary or decimal
	 * SI suffix or an exponent; requests and limits must not be negative */
	TABLE("Pod",
	      POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"requests\":"
		  "{\"memory\":\"%s\"}}}"),
	      "spec.containers[0].resources.requests[memory]", {"1", true}, {"0", true},
	      {"128Mi", true}, {"1Gi", true}, {"1.5Gi", true}, {"1G", true}, {"1k", true},
	      {"500M", true}, {"1e3", true}, {"1E3", true}, {"1E", true}, {"+1", true},
	      {"0.5", true}, {"100m", true}, {"1Ei", true}, {"abc", false}, {"1GB", false},
	      {"1 Gi", false}, {"Gi", false}, {"1.2.3", false}, {"1Gib", false}, {"1e", false},
	      {"1K", false}, {"-1", false}, {"-1Gi", false}, {"", false});
	TABLE("Pod",
	      POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"limits\":"
		  "{\"cpu\":%s}}}"),
	      "spec.containers[0].resources.limits[cpu]", {"1", true}, {"\"250m\"", true},
	      {"0.5", true}, {"-1", false}, {"\"-250m\"", false}, {"true", false});
	/* a request above its limit */
	expect_cause("Pod",
		     POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"requests\":"
			 "{\"cpu\":\"2\"},\"limits\":{\"cpu\":\"1500m\"}}}"),
		     NULL, "FieldValueInvalid", "spec.containers[0].resources.requests[cpu]");
	expect_ok("Pod",
		  POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"requests\":"
		      "{\"memory\":\"1Gi\"},\"limits\":{\"memory\":\"1024Mi\"}}}"),
		  NULL);
	/* resource names: standard or fully qualified */
	TABLE("Pod",
	      POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"limits\":"
		  "{\"%s\":\"1\"}}}"),
	      "spec.containers[0].resources.limits", {"cpu", true}, {"hugepages-2Mi", true},
	      {"example.com/gpu", true}, {"gpu", false}, {"a/b/c", false});
	expect_cause("Pod",
		     POD("{\"name\":\"c\",\"image\":\"x\",\"resources\":{\"limits\":"
			 "{\"gpu\":\"1\"}}}"),
		     NULL, "FieldValueInvalid", "spec.containers[0].resources.limits[gpu]");
}

#define DEPLOY_SEL(sel)                                                                            \
	"{" META("d") ",\"spec\":{\"selector\":" sel ",\"template\":{\"metadata\":{\"labels\":"    \
		      "{\"app\":\"web\",\"tier\":\"front\"}},\"spec\":{\"containers\":[" CTR       \
		      "]}}}}"

static void test_table_selectors(void **state)
{
	/* LabelSelector: matchLabels (label map) and matchExpressions (In/NotIn need values,
	 * Exists/DoesNotExist take none); it must match the template's labels */
	TABLE(
	    "Deployment", DEPLOY_SEL("%s"), "spec.selector",
	    {"{\"matchLabels\":{\"app\":\"web\"}}", true},
	    {"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"web\","
	     "\"api\"]}]}",
	     true},
	    {"{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Exists\"}]}", true},
	    {"{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"x\","
	     "\"operator\":\"DoesNotExist\"}]}",
	     true},
	    {"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"NotIn\",\"values\":"
	     "[\"db\"]}]}",
	     true},
	    {"{}", false}, {"{\"matchLabels\":{\"app\":\"-web\"}}", false},
	    {"{\"matchLabels\":{\"a/b/c\":\"web\"}}", false},
	    {"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[]}]}", false},
	    {"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Exists\",\"values\":"
	     "[\"web\"]}]}",
	     false},
	    {"{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Equals\",\"values\":"
	     "[\"web\"]}]}",
	     false},
	    {"{\"matchExpressions\":[{\"key\":\"-app\",\"operator\":\"Exists\"}]}", false});
	/* a valid selector that does not select the template */
	expect_cause("Deployment", DEPLOY_SEL("{\"matchLabels\":{\"app\":\"db\"}}"), NULL,
		     "FieldValueInvalid", "spec.template.metadata.labels");
}

static void test_table_service_fields(void **state)
{
	TABLE("Service", SVC("{\"ports\":[{\"port\":80}],\"externalIPs\":[\"%s\"]}"),
	      "spec.externalIPs[0]", {"192.0.2.10", true}, {"2001:db8::1", true},
	      {"0.0.0.0", false}, {"127.0.0.1", false}, {"169.254.1.1", false},
	      {"224.0.0.5", false}, {"::1", false}, {"fe80::1", false}, {"x", false});
	/* externalTrafficPolicy only for externally accessible services (NodePort,
	 * LoadBalancer, or a ClusterIP one with externalIPs) */
	expect_ok("Service",
		  SVC("{\"ports\":[{\"port\":80}],\"externalIPs\":[\"192.0.2.10\"],"
		      "\"externalTrafficPolicy\":\"Local\"}"),
		  NULL);
	expect_ok("Service",
		  SVC("{\"type\":\"NodePort\",\"ports\":[{\"port\":80}],"
		      "\"externalTrafficPolicy\":\"Local\"}"),
		  NULL);
	expect_cause("Service",
		     SVC("{\"ports\":[{\"port\":80}],\"externalTrafficPolicy\":"
			 "\"Cluster\"}"),
		     NULL, "FieldValueInvalid", "spec.externalTrafficPolicy");
	expect_cause("Service",
		     SVC("{\"type\":\"NodePort\",\"ports\":[{\"port\":80}],"
			 "\"externalTrafficPolicy\":\"Nearest\"}"),
		     NULL, "FieldValueNotSupported", "spec.externalTrafficPolicy");
	/* session affinity: ClientIP takes a timeout of (0, 86400], None takes no config */
	TABLE("Service",
	      SVC("{\"ports\":[{\"port\":80}],\"sessionAffinity\":\"ClientIP\","
		  "\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":%s}}}"),
	      "spec.sessionAffinityConfig.clientIP.timeoutSeconds", {"1", true}, {"86400", true},
	      {"0", false}, {"86401", false});
	expect_ok("Service", SVC("{\"ports\":[{\"port\":80}],\"sessionAffinity\":\"ClientIP\"}"),
		  NULL);
	/* sessionAffinity None (given or defaulted): defaulting drops the config, as Kubernetes'
	 * SetDefaults_Service does, so `kubectl patch -p {"spec":{"sessionAffinity":"None"}}` on a
	 * ClientIP service succeeds; validation alone still forbids it */
	{
		cJSON *n = J(SVC("{\"ports\":[{\"port\":80}],\"sessionAffinity\":\"None\","
				 "\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":60}}}"));
		cJSON *d = J(SVC("{\"ports\":[{\"port\":80}],\"sessionAffinityConfig\":"
				 "{\"clientIP\":{\"timeoutSeconds\":60}}}"));
		struct err e2 = { 0 };
		bool forbidden = false;

		assert_int_equal(validate_object("Service", n, NULL, &e2), -EINVAL);
		for (int i = 0; i < e2.ncauses; i++)
			forbidden |= streq(e2.causes[i].field, "spec.sessionAffinityConfig") &&
				     streq(e2.causes[i].type, "FieldValueForbidden");
		assert_true(forbidden);
		validate_default("Service", n);
		validate_default("Service", d);
		assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(n, "spec"), "sessionAffinityConfig"));
		assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "sessionAffinityConfig"));
		assert_int_equal(validate_object("Service", n, NULL, &e2), 0);
		cJSON_Delete(n);
		cJSON_Delete(d);
	}
	TABLE("Service", SVC("{\"ports\":[{\"port\":80}],\"sessionAffinity\":\"%s\"}"),
	      "spec.sessionAffinity", {"None", true}, {"ClientIP", true}, {"Sticky", false});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod_defaults),	 cmocka_unit_test(test_pod_invalid),
		cmocka_unit_test(test_wrong_types),	 cmocka_unit_test(test_deployment),
		cmocka_unit_test(test_job),		 cmocka_unit_test(test_service),
		cmocka_unit_test(test_pod_update),	 cmocka_unit_test(test_config_and_secret),
		cmocka_unit_test(test_cluster_kinds),	 cmocka_unit_test(test_table_names),
		cmocka_unit_test(test_table_ports),	 cmocka_unit_test(test_table_labels),
		cmocka_unit_test(test_table_quantities), cmocka_unit_test(test_table_selectors),
		cmocka_unit_test(test_table_service_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
