// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for everything that reads untrusted request bodies: YAML/JSON decoding,
 * defaulting + validation for every kind (create and update), table printing, label/field
 * selectors and the three patch flavours of one document onto another.
 */
#include <stdint.h>
#include <string.h>

#include "api/patch.h"
#include "api/quantity.h"
#include "api/selector.h"
#include "api/table.h"
#include "api/validate.h"
#include "lib/yaml.h"

static const char *const kinds[] = { "Pod",	  "Deployment", "ReplicaSet", "Job",
				     "Service",	  "ConfigMap",	"Secret",     "Namespace",
				     "Node",	  "Event",	"Endpoints",  "Widget" };

static const char *field_get(const char *field, void *ud)
{
	const cJSON *o = ud;
	char buf[128];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", field);
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save))
		o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, t) : NULL;
	return cJSON_IsString(o) ? o->valuestring : "";
}

static void fuzz_selectors(const char *s, const cJSON *doc)
{
	static const char *const fields[] = { "metadata.name", "metadata.namespace",
					      "spec.nodeName", "status.phase", NULL };
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "labels");
	struct label_selector *ls = NULL;
	struct field_selector *fs = NULL;
	struct err e = { 0 };
	int64_t q;

	if (label_selector_parse(s, &ls, &e) == 0) {
		(void)label_selector_matches(ls, labels);
		(void)label_selector_is_empty(ls);
	}
	label_selector_free(ls);
	if (field_selector_parse(s, fields, &fs, &e) == 0)
		(void)field_selector_matches(fs, field_get, (void *)doc);
	field_selector_free(fs);
	(void)quantity_parse_milli(s, &q);
	(void)quantity_parse_bytes(s, &q);
	(void)selector_qualified_name_error(s);
	(void)selector_label_value_error(s);
	if (doc) {
		ls = NULL;
		if (label_selector_from_json(doc, "spec.selector", &ls, &e) == 0)
			(void)label_selector_matches(ls, labels);
		label_selector_free(ls);
	}
}

static void fuzz_doc(const cJSON *doc, const cJSON *other)
{
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		cJSON *a = cJSON_Duplicate(doc, true), *t;
		struct err e = { 0 };

		validate_default(kinds[k], a);
		(void)validate_object(kinds[k], a, NULL, &e);
		(void)validate_object(kinds[k], a, doc, &e);
		if (other)
			(void)validate_object(kinds[k], a, other, &e);
		t = table_new(kinds[k]);
		table_add_row(t, kinds[k], a, 1704067200, k & 1 ? "Object" : NULL);
		cJSON_Delete(t);
		if (other) {
			cJSON *p = cJSON_Duplicate(a, true);
			(void)patch_strategic(p, other, kinds[k], &e);
			(void)validate_object(kinds[k], p, a, &e);
			cJSON_Delete(p);
		}
		cJSON_Delete(a);
	}
	if (other) {
		cJSON *a = cJSON_Duplicate(doc, true);
		struct err e = { 0 };

		(void)patch_merge(a, other, &e);
		(void)patch_json(a, other, &e);
		cJSON_Delete(a);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *docs = NULL, *d;
	struct err e = { 0 };
	char sel[512];
	size_t n = size < sizeof(sel) - 1 ? size : sizeof(sel) - 1;

	memcpy(sel, data, n);
	sel[n] = 0;
	if (yaml_parse_docs((const char *)data, size, &docs, &e) == 0) {
		const cJSON *first = cJSON_GetArrayItem(docs, 0);
		int i = 0;

		cJSON_ArrayForEach(d, docs)
		{
			if (i++ >= 4)
				break;
			fuzz_doc(d, d->next ? d->next : (d != first ? first : NULL));
		}
		fuzz_selectors(sel, first);
		cJSON_Delete(docs);
	} else {
		fuzz_selectors(sel, NULL);
	}
	return 0;
}
