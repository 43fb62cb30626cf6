// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: Kubernetes protobuf request bodies (api/protobuf.h) and the field check
 * that follows them on the API path (api/schema.h). The first input byte picks the kind a
 * body without typeMeta is decoded as; the rest is the body, with the "k8s\0" magic added
 * when missing so the fuzzer spends its time past the prefix check.
 */
#include <stdint.h>
#include <string.h>

#include "api/protobuf.h"
#include "api/schema.h"

static const char *const kinds[][2] = {
	{ "v1", "Pod" },	    { "v1", "Service" },	 { "v1", "ConfigMap" },
	{ "v1", "Secret" },	    { "v1", "Namespace" },	 { "v1", "Node" },
	{ "v1", "Event" },	    { "v1", "Endpoints" },	 { "apps/v1", "Deployment" },
	{ "apps/v1", "ReplicaSet" }, { "batch/v1", "Job" },	 { "autoscaling/v1", "Scale" },
	{ "v1", "DeleteOptions" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[1 << 17];
	const char *const *k;
	cJSON *j = NULL;
	char **msgs = NULL;
	size_t n;

	if (size < 1 || size > sizeof(buf) - PB_MAGIC_LEN)
		return 0;
	k = kinds[data[0] % (sizeof(kinds) / sizeof(kinds[0]))];
	data++;
	size--;
	if (size >= PB_MAGIC_LEN && !memcmp(data, PB_MAGIC, PB_MAGIC_LEN)) {
		memcpy(buf, data, size);
		n = size;
	} else {
		memcpy(buf, PB_MAGIC, PB_MAGIC_LEN);
		memcpy(buf + PB_MAGIC_LEN, data, size);
		n = size + PB_MAGIC_LEN;
	}
	if (pb_envelope_decode(buf, n, k[0], k[1], &j, NULL) == 0) {
		/* what the decoder produces is valid JSON the field check accepts as known */
		char *text = cJSON_PrintUnformatted(j);
		const struct schema_msg *m = schema_find(cJSON_GetObjectItem(j, "apiVersion")->valuestring,
							 cJSON_GetObjectItem(j, "kind")->valuestring);
		if (!text || !m)
			__builtin_trap();
		if (schema_fields_check(m, j, &msgs) != 0)
			__builtin_trap();
		schema_msgs_free(msgs);
		cJSON_free(text);
		cJSON_Delete(j);
	}
	return 0;
}
