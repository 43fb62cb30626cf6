// SPDX-License-Identifier: Apache-2.0
/* Protobuf bodies -> JSON (api/protobuf.h) and the unknown/duplicate field check (api/schema.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "api/protobuf.h"
#include "api/schema.h"
#include "lib/macro.h"

/* What kubectl 1.33 sent for `kubectl create namespace ns1`, `create configmap cm1
 * --from-literal=a=b --from-literal=c=d`, `create secret generic s1 --from-literal=k=v`,
 * `create deployment d1 --image=busybox:1.36 --replicas=2 --port=8080`, `create job j1
 * --image=busybox:1.36 -- sh -c true` (captured from the wire). */
static const unsigned char vec_namespaces[] = {
	0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09,
	0x4e, 0x61, 0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1b, 0x0a,
	0x13, 0x0a, 0x03, 0x6e, 0x73, 0x31, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00,
	0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x00, 0x1a, 0x02,
	0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00
};
static const unsigned char vec_configmaps[] = {
	0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09,
	0x43, 0x6f, 0x6e, 0x66, 0x69, 0x67, 0x4d, 0x61, 0x70, 0x12, 0x25, 0x0a,
	0x13, 0x0a, 0x03, 0x63, 0x6d, 0x31, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00,
	0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x06, 0x0a, 0x01,
	0x61, 0x12, 0x01, 0x62, 0x12, 0x06, 0x0a, 0x01, 0x63, 0x12, 0x01, 0x64,
	0x1a, 0x00, 0x22, 0x00
};
static const unsigned char vec_secrets[] = {
	0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0c, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x06,
	0x53, 0x65, 0x63, 0x72, 0x65, 0x74, 0x12, 0x1e, 0x0a, 0x12, 0x0a, 0x02,
	0x73, 0x31, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00,
	0x38, 0x00, 0x42, 0x00, 0x12, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76,
	0x1a, 0x00, 0x1a, 0x00, 0x22, 0x00
};
static const unsigned char vec_deployments[] = {
	0x6b, 0x38, 0x73, 0x00, 0x0a, 0x15, 0x0a, 0x07, 0x61, 0x70, 0x70, 0x73,
	0x2f, 0x76, 0x31, 0x12, 0x0a, 0x44, 0x65, 0x70, 0x6c, 0x6f, 0x79, 0x6d,
	0x65, 0x6e, 0x74, 0x12, 0xbe, 0x01, 0x0a, 0x1d, 0x0a, 0x02, 0x64, 0x31,
	0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
	0x42, 0x00, 0x5a, 0x09, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x02, 0x64,
	0x31, 0x12, 0x8e, 0x01, 0x08, 0x02, 0x12, 0x0b, 0x0a, 0x09, 0x0a, 0x03,
	0x61, 0x70, 0x70, 0x12, 0x02, 0x64, 0x31, 0x1a, 0x75, 0x0a, 0x1b, 0x0a,
	0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38,
	0x00, 0x42, 0x00, 0x5a, 0x09, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x02,
	0x64, 0x31, 0x12, 0x56, 0x12, 0x38, 0x0a, 0x07, 0x62, 0x75, 0x73, 0x79,
	0x62, 0x6f, 0x78, 0x12, 0x0c, 0x62, 0x75, 0x73, 0x79, 0x62, 0x6f, 0x78,
	0x3a, 0x31, 0x2e, 0x33, 0x36, 0x2a, 0x00, 0x32, 0x0b, 0x0a, 0x00, 0x10,
	0x00, 0x18, 0x90, 0x3f, 0x22, 0x00, 0x2a, 0x00, 0x42, 0x00, 0x6a, 0x00,
	0x72, 0x00, 0x80, 0x01, 0x00, 0x88, 0x01, 0x00, 0x90, 0x01, 0x00, 0xa2,
	0x01, 0x00, 0x1a, 0x00, 0x32, 0x00, 0x42, 0x00, 0x4a, 0x00, 0x52, 0x00,
	0x58, 0x00, 0x60, 0x00, 0x68, 0x00, 0x82, 0x01, 0x00, 0x8a, 0x01, 0x00,
	0x9a, 0x01, 0x00, 0xc2, 0x01, 0x00, 0x22, 0x02, 0x0a, 0x00, 0x28, 0x00,
	0x38, 0x00, 0x1a, 0x0c, 0x08, 0x00, 0x10, 0x00, 0x18, 0x00, 0x20, 0x00,
	0x28, 0x00, 0x38, 0x00, 0x1a, 0x00, 0x22, 0x00
};
static const unsigned char vec_jobs[] = {
	0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x08, 0x62, 0x61, 0x74, 0x63,
	0x68, 0x2f, 0x76, 0x31, 0x12, 0x03, 0x4a, 0x6f, 0x62, 0x12, 0x8d, 0x01,
	0x0a, 0x12, 0x0a, 0x02, 0x6a, 0x31, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00,
	0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x6d, 0x32, 0x6b,
	0x0a, 0x10, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00,
	0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x57, 0x12, 0x34, 0x0a, 0x02,
	0x6a, 0x31, 0x12, 0x0c, 0x62, 0x75, 0x73, 0x79, 0x62, 0x6f, 0x78, 0x3a,
	0x31, 0x2e, 0x33, 0x36, 0x1a, 0x02, 0x73, 0x68, 0x1a, 0x02, 0x2d, 0x63,
	0x1a, 0x04, 0x74, 0x72, 0x75, 0x65, 0x2a, 0x00, 0x42, 0x00, 0x6a, 0x00,
	0x72, 0x00, 0x80, 0x01, 0x00, 0x88, 0x01, 0x00, 0x90, 0x01, 0x00, 0xa2,
	0x01, 0x00, 0x1a, 0x05, 0x4e, 0x65, 0x76, 0x65, 0x72, 0x32, 0x00, 0x42,
	0x00, 0x4a, 0x00, 0x52, 0x00, 0x58, 0x00, 0x60, 0x00, 0x68, 0x00, 0x82,
	0x01, 0x00, 0x8a, 0x01, 0x00, 0x9a, 0x01, 0x00, 0xc2, 0x01, 0x00, 0x1a,
	0x08, 0x20, 0x00, 0x28, 0x00, 0x30, 0x00, 0x3a, 0x00, 0x1a, 0x00, 0x22,
	0x00
};

static void assert_json_eq(const cJSON *got, const char *want_text)
{
	cJSON *want = cJSON_Parse(want_text);
	char *g = cJSON_PrintUnformatted(got);

	assert_non_null(want);
	if (!cJSON_Compare(got, want, true))
		fail_msg("got  %s\nwant %s", g, want_text);
	free(g);
	cJSON_Delete(want);
}

static cJSON *decode_ok(const void *data, size_t len)
{
	struct err e = { 0 };
	cJSON *j = NULL;
	int r = pb_envelope_decode(data, len, NULL, NULL, &j, &e);

	if (r < 0)
		fail_msg("decode: %d %s", r, e.message);
	return j;
}

static void test_kubectl_vectors(void **state)
{
	cJSON *j;

	j = decode_ok(vec_namespaces, sizeof(vec_namespaces));
	assert_json_eq(j, "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
			  "\"ns1\",\"creationTimestamp\":null},\"spec\":{},\"status\":{}}");
	/* TypeMeta first, as Go writes it */
	assert_string_equal(j->child->string, "kind");
	cJSON_Delete(j);

	j = decode_ok(vec_configmaps, sizeof(vec_configmaps));
	assert_json_eq(j, "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
			  "\"cm1\",\"creationTimestamp\":null},\"data\":{\"a\":\"b\",\"c\":\"d\"}}");
	cJSON_Delete(j);

	/* map<string, bytes>: base64 */
	j = decode_ok(vec_secrets, sizeof(vec_secrets));
	assert_json_eq(j, "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
			  "\"s1\",\"creationTimestamp\":null},\"data\":{\"k\":\"dg==\"}}");
	cJSON_Delete(j);

	/* zero non-pointer omitempty scalars vanish, a pointer (replicas) and non-omitempty
	 * (containerPort) stay, present messages are {} */
	j = decode_ok(vec_deployments, sizeof(vec_deployments));
	assert_json_eq(j, "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{"
			  "\"name\":\"d1\",\"creationTimestamp\":null,\"labels\":{\"app\":\"d1\"}},"
			  "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"d1\"}},"
			  "\"template\":{\"metadata\":{\"creationTimestamp\":null,\"labels\":{"
			  "\"app\":\"d1\"}},\"spec\":{\"containers\":[{\"name\":\"busybox\","
			  "\"image\":\"busybox:1.36\",\"ports\":[{\"containerPort\":8080}],"
			  "\"resources\":{}}]}},\"strategy\":{}},\"status\":{}}");
	cJSON_Delete(j);

	j = decode_ok(vec_jobs, sizeof(vec_jobs));
	assert_json_eq(j, "{\"kind\":\"Job\",\"apiVersion\":\"batch/v1\",\"metadata\":{\"name\":"
			  "\"j1\",\"creationTimestamp\":null},\"spec\":{\"template\":{\"metadata\":{"
			  "\"creationTimestamp\":null},\"spec\":{\"containers\":[{\"name\":\"j1\","
			  "\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\",\"true\"],"
			  "\"resources\":{}}],\"restartPolicy\":\"Never\"}}},\"status\":{}}");
	cJSON_Delete(j);
}

/* ---------- a tiny encoder for hand-made messages ---------- */

struct enc {
	uint8_t b[4096];
	size_t n;
};

static void put_varint(struct enc *e, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		e->b[e->n++] = c | (v ? 0x80 : 0);
	} while (v);
}

static void put_key(struct enc *e, unsigned num, unsigned wt)
{
	put_varint(e, (uint64_t)num << 3 | wt);
}

static void put_bytes(struct enc *e, unsigned num, const void *p, size_t len)
{
	put_key(e, num, 2);
	put_varint(e, len);
	memcpy(e->b + e->n, p, len);
	e->n += len;
}

static void put_str(struct enc *e, unsigned num, const char *s)
{
	put_bytes(e, num, s, strlen(s));
}

static void put_msg(struct enc *e, unsigned num, const struct enc *m)
{
	put_bytes(e, num, m->b, m->n);
}

static void put_int(struct enc *e, unsigned num, int64_t v)
{
	put_key(e, num, 0);
	put_varint(e, (uint64_t)v);
}

static void envelope(struct enc *out, const char *av, const char *kind, const struct enc *raw)
{
	struct enc tm = { 0 };

	memcpy(out->b, PB_MAGIC, PB_MAGIC_LEN);
	out->n = PB_MAGIC_LEN;
	put_str(&tm, 1, av);
	put_str(&tm, 2, kind);
	put_msg(out, 1, &tm);
	put_msg(out, 2, raw);
}

static void test_pod_fields(void **state)
{
	struct enc pod = { 0 }, md = { 0 }, spec = { 0 }, c = { 0 }, port = { 0 }, probe = { 0 },
		   http = { 0 }, ios = { 0 }, vol = { 0 }, ed = { 0 }, res = { 0 }, q = { 0 },
		   ent = { 0 }, ts = { 0 }, env = { 0 }, out = { 0 }, lab = { 0 };

	/* metadata: name, labels entry, creationTimestamp {seconds} */
	put_str(&md, 1, "p");
	put_str(&lab, 1, "app");
	put_str(&lab, 2, "web");
	put_msg(&md, 11, &lab);
	put_int(&ts, 1, 1700000000);
	put_msg(&md, 8, &ts);
	put_msg(&pod, 1, &md);

	/* container with a port, an env var, a probe (inline handler, IntOrString port by name),
	 * resources.limits (map of Quantity) */
	put_str(&c, 1, "main");
	put_str(&c, 2, "busybox");
	put_str(&c, 3, "sleep"); /* command, repeated */
	put_str(&c, 3, "10");
	put_int(&port, 3, 8080);
	put_str(&port, 4, "TCP");
	put_msg(&c, 6, &port);
	put_str(&env, 1, "A");
	put_str(&env, 2, "1");
	put_msg(&c, 7, &env);
	put_str(&http, 1, "/healthz");
	put_int(&ios, 1, 1);
	put_str(&ios, 3, "http");
	put_msg(&http, 2, &ios);
	struct enc handler = { 0 };
	put_msg(&handler, 2, &http);
	put_msg(&probe, 1, &handler);
	put_int(&probe, 2, 5); /* initialDelaySeconds: non-pointer, not omitempty in Go */
	put_msg(&c, 10, &probe);
	put_str(&q, 1, "500m");
	put_str(&ent, 1, "cpu");
	put_msg(&ent, 2, &q);
	put_msg(&res, 1, &ent);
	put_msg(&c, 8, &res);
	put_msg(&spec, 2, &c);

	/* volume with an inline emptyDir {} */
	put_str(&vol, 1, "scratch");
	struct enc src = { 0 };
	put_msg(&src, 2, &ed);
	put_msg(&vol, 2, &src);
	put_msg(&spec, 1, &vol);
	/* terminationGracePeriodSeconds (pointer) = 0 stays; hostNetwork false (omitempty) goes */
	put_int(&spec, 4, 0);
	put_int(&spec, 11, 0);
	/* an unknown field number is skipped */
	put_str(&spec, 9999, "ignored");
	put_msg(&pod, 2, &spec);

	envelope(&out, "v1", "Pod", &pod);
	cJSON *j = decode_ok(out.b, out.n);
	assert_json_eq(
		j,
		"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p\","
		"\"labels\":{\"app\":\"web\"},\"creationTimestamp\":\"2023-11-14T22:13:20Z\"},"
		"\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
		"\"command\":[\"sleep\",\"10\"],\"ports\":[{\"containerPort\":8080,"
		"\"protocol\":\"TCP\"}],\"env\":[{\"name\":\"A\",\"value\":\"1\"}],"
		"\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":\"http\"},"
		"\"initialDelaySeconds\":5},\"resources\":{\"limits\":{\"cpu\":\"500m\"}}}],"
		"\"volumes\":[{\"name\":\"scratch\",\"emptyDir\":{}}],"
		"\"terminationGracePeriodSeconds\":0}}");
	cJSON_Delete(j);
}

static void test_scalars(void **state)
{
	struct enc svc = { 0 }, spec = { 0 }, port = { 0 }, ios = { 0 }, out = { 0 };
	cJSON *j;

	/* IntOrString by number; negative int32 (10-byte varint) */
	put_int(&ios, 1, 0);
	put_int(&ios, 2, 8080);
	put_int(&port, 3, 80);
	put_msg(&port, 4, &ios);
	put_int(&port, 5, -1); /* nodePort: nonsense but decodable */
	put_msg(&spec, 1, &port);
	put_str(&spec, 3, "10.0.0.1");
	/* a string with invalid UTF-8 becomes U+FFFD */
	put_bytes(&spec, 4, "Cluster\xffIP", 10);
	put_msg(&svc, 2, &spec);
	envelope(&out, "v1", "Service", &svc);
	j = decode_ok(out.b, out.n);
	assert_json_eq(j, "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"spec\":{\"ports\":[{"
			  "\"port\":80,\"targetPort\":8080,\"nodePort\":-1}],\"clusterIP\":"
			  "\"10.0.0.1\",\"type\":\"Cluster\xef\xbf\xbdIP\"}}");
	cJSON_Delete(j);

	/* repeated int64 (securityContext.supplementalGroups), packed and unpacked */
	struct enc pod = { 0 }, ps = { 0 }, sc = { 0 }, pk = { 0 };
	put_varint(&pk, 1000);
	put_varint(&pk, 2000);
	put_msg(&sc, 4, &pk);        /* packed */
	put_int(&sc, 4, 3000);       /* and unpacked */
	put_msg(&ps, 14, &sc);
	put_msg(&pod, 2, &ps);
	out.n = 0;
	envelope(&out, "v1", "Pod", &pod);
	j = decode_ok(out.b, out.n);
	assert_json_eq(j, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"spec\":{\"securityContext\":"
			  "{\"supplementalGroups\":[1000,2000,3000]}}}");
	cJSON_Delete(j);
}

static void test_envelope_errors(void **state)
{
	struct enc raw = { 0 }, out = { 0 };
	struct err e = { 0 };
	cJSON *j = NULL;

	/* no magic */
	assert_int_equal(pb_envelope_decode("abcd", 4, NULL, NULL, &j, &e), -EBADMSG);
	assert_int_equal(e.code, 400);
	/* unknown kind: 415 */
	put_str(&raw, 1, "x");
	envelope(&out, "v1", "Frobnicator", &raw);
	memset(&e, 0, sizeof(e));
	assert_int_equal(pb_envelope_decode(out.b, out.n, NULL, NULL, &j, &e), -EOPNOTSUPP);
	assert_int_equal(e.code, 415);
	/* truncated: every prefix of a valid body fails cleanly or decodes */
	envelope(&out, "v1", "ConfigMap", &raw);
	for (size_t n = 0; n < sizeof(vec_deployments); n++) {
		j = NULL;
		if (pb_envelope_decode(vec_deployments, n, NULL, NULL, &j, NULL) == 0)
			cJSON_Delete(j);
		else
			assert_null(j);
	}
	/* an envelope without typeMeta and no hint: nothing to decode it with */
	out.n = PB_MAGIC_LEN;
	memcpy(out.b, PB_MAGIC, PB_MAGIC_LEN);
	struct enc dopt = { 0 };
	put_str(&dopt, 3, "Foreground");
	put_msg(&out, 2, &dopt);
	j = NULL;
	assert_int_equal(pb_envelope_decode(out.b, out.n, NULL, NULL, &j, NULL), -EOPNOTSUPP);
	assert_null(j);
}

static void test_envelope_hint(void **state)
{
	struct enc out = { 0 }, dopt = { 0 };
	struct err e = { 0 };
	cJSON *j = NULL;

	memcpy(out.b, PB_MAGIC, PB_MAGIC_LEN);
	out.n = PB_MAGIC_LEN;
	put_int(&dopt, 1, 0);              /* gracePeriodSeconds (pointer) = 0 */
	put_str(&dopt, 4, "Foreground");   /* propagationPolicy */
	put_msg(&out, 2, &dopt);
	assert_int_equal(pb_envelope_decode(out.b, out.n, "v1", "DeleteOptions", &j, &e), 0);
	assert_json_eq(j, "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
			  "\"gracePeriodSeconds\":0,\"propagationPolicy\":\"Foreground\"}");
	cJSON_Delete(j);
}

static int check(const char *kind, const char *gv, const char *text, char ***msgs, cJSON **obj)
{
	*obj = cJSON_Parse(text);
	assert_non_null(*obj);
	return schema_fields_check(schema_find(gv, kind), *obj, msgs);
}

static void test_unknown_fields(void **state)
{
	char **msgs = NULL;
	cJSON *obj = NULL;

	assert_int_equal(check("Pod", "v1",
			       "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\","
			       "\"labels\":{\"any.key/x\":\"y\"},\"annotations\":{\"a\":\"b\"}},"
			       "\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\",\"bogus\":1,"
			       "\"resources\":{\"limits\":{\"cpu\":\"1\"}},\"livenessProbe\":{"
			       "\"exec\":{\"command\":[\"x\"]}}}],\"frobnicate\":true,"
			       "\"volumes\":[{\"name\":\"v\",\"emptyDir\":{},\"nope\":{}}]}}",
			       &msgs, &obj),
			 3);
	assert_string_equal(msgs[0], "unknown field \"spec.containers[0].bogus\"");
	assert_string_equal(msgs[1], "unknown field \"spec.frobnicate\"");
	assert_string_equal(msgs[2], "unknown field \"spec.volumes[0].nope\"");
	assert_null(msgs[3]);
	/* dropped from the object; the rest (maps, inline members) stays */
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "frobnicate"));
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "volumes"));
	schema_msgs_free(msgs);
	cJSON_Delete(obj);

	/* duplicates: reported, the last one wins */
	assert_int_equal(check("ConfigMap", "v1",
			       "{\"metadata\":{\"name\":\"a\",\"name\":\"b\"},\"data\":{\"k\":\"v\"}}",
			       &msgs, &obj),
			 1);
	assert_string_equal(msgs[0], "duplicate field \"metadata.name\"");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name")
				    ->valuestring,
			    "b");
	schema_msgs_free(msgs);
	cJSON_Delete(obj);

	/* a clean deployment, with managedFields (free-form fieldsV1) and IntOrString */
	assert_int_equal(check("Deployment", "apps/v1",
			       "{\"metadata\":{\"name\":\"d\",\"managedFields\":[{\"manager\":\"m\","
			       "\"fieldsV1\":{\"f:spec\":{}}}]},\"spec\":{\"replicas\":1,"
			       "\"strategy\":{\"rollingUpdate\":{\"maxSurge\":\"25%\"}},"
			       "\"template\":{\"spec\":{\"containers\":[]}}}}",
			       &msgs, &obj),
			 0);
	schema_msgs_free(msgs);
	cJSON_Delete(obj);
	assert_null(schema_find("apps/v1", "Pod"));
	assert_non_null(schema_find("meta.k8s.io/v1", "DeleteOptions"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubectl_vectors), cmocka_unit_test(test_pod_fields),
		cmocka_unit_test(test_scalars),		cmocka_unit_test(test_envelope_errors),
		cmocka_unit_test(test_envelope_hint),	cmocka_unit_test(test_unknown_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
