// SPDX-License-Identifier: Apache-2.0
/* Output helpers shared by the commands: JSON/YAML printing and server errors. */
#include <string.h>

#include "lib/json.h"
#include "lib/yaml.h"
#include "tools/shoalctl/shoalctl.h"

const char *ctl_json_str(const cJSON *j, const char *path)
{
	return json_str(j, path, NULL);
}

void ctl_print_json(const cJSON *j, FILE *out)
{
	_cleanup_free_ char *text = cJSON_Print(j);
	bool line_start = true;

	if (!text)
		return;
	/* cJSON indents with tabs and puts one after ':'; strings never hold a raw tab (JSON
	 * escapes it), so every tab is layout and becomes kubectl's 4 spaces / 1 space */
	for (const char *p = text; *p; p++) {
		if (*p == '\t')
			fputs(line_start ? "    " : " ", out);
		else
			fputc(*p, out);
		if (*p == '\n')
			line_start = true;
		else if (*p != '\t')
			line_start = false;
	}
	fputc('\n', out);
}

int ctl_print_yaml(const cJSON *j, FILE *out)
{
	_cleanup_free_ char *text = yaml_emit(j);

	if (!text)
		return -ENOMEM;
	fprintf(out, "%s\n", text);
	return 0;
}

static int status_errno(long status)
{
	switch (status) {
	case 400:
	case 422:
		return EINVAL;
	case 401:
	case 403:
		return EACCES;
	case 404:
		return ENOENT;
	case 405:
		return EOPNOTSUPP;
	case 409:
		return EEXIST;
	case 410:
		return ESTALE;
	case 413:
		return EFBIG;
	case 429:
	case 503:
		return EAGAIN;
	case 504:
		return ETIMEDOUT;
	default:
		return EIO;
	}
}

static const char *status_reason(long status)
{
	switch (status) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 409:
		return "Conflict";
	case 410:
		return "Expired";
	case 413:
		return "RequestEntityTooLarge";
	case 415:
		return "UnsupportedMediaType";
	case 422:
		return "Invalid";
	case 429:
		return "TooManyRequests";
	case 504:
		return "Timeout";
	default:
		return status >= 500 ? "InternalError" : "";
	}
}

int ctl_status_to_err(long status, const char *body, struct err *e)
{
	_cleanup_json_ cJSON *j = body ? cJSON_Parse(body) : NULL;
	const char *kind = ctl_json_str(j, "kind");
	const char *reason = ctl_json_str(j, "reason");
	const char *message = ctl_json_str(j, "message");
	int errnum = status_errno(status);

	if (kind && streq(kind, "Status") && message) {
		int r = err_set(e, errnum, (int)status, reason ? reason : status_reason(status),
				"%s", message);
		const cJSON *c;

		/* field causes when the message does not carry them already */
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
					      cJSON_GetObjectItemCaseSensitive(j, "details"), "causes"))
			err_cause(e, ctl_json_str(c, "reason") ?: "", ctl_json_str(c, "field") ?: "",
				  "%s", ctl_json_str(c, "message") ?: "");
		return r;
	}
	if (status == 404)
		return err_set(e, errnum, 404, "NotFound",
			       "the server could not find the requested resource");
	if (body && *body) {
		size_t n = strcspn(body, "\n");

		return err_set(e, errnum, (int)status, status_reason(status), "%.*s",
			       (int)(n > 300 ? 300 : n), body);
	}
	return err_set(e, errnum, (int)status, status_reason(status),
		       "the server answered HTTP %ld", status);
}
