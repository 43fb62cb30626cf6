// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "api/quantity.h"

/* A parsed quantity: value = sign * mant * 10^exp10 * 2^exp2. */
struct qty {
	bool neg;
	__int128 mant;
	int exp10;
	int exp2;
};

static int qty_parse(const char *s, struct qty *q)
{
	const char *p = s;
	int ndigits = 0, nsig = 0;

	if (!s)
		return -EINVAL;
	memset(q, 0, sizeof(*q));
	if (*p == '+' || *p == '-')
		q->neg = *p++ == '-';
	for (; *p >= '0' && *p <= '9'; p++, ndigits++) {
		if (nsig < 30) {
			q->mant = q->mant * 10 + (*p - '0');
			if (q->mant)
				nsig++;
		} else {
			q->exp10++; /* digits beyond precision: keep magnitude */
		}
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, ndigits++) {
			if (nsig < 30) {
				q->mant = q->mant * 10 + (*p - '0');
				q->exp10--;
				if (q->mant)
					nsig++;
			}
		}
	}
	if (ndigits == 0)
		return -EINVAL;
	/* suffix */
	if (!*p)
		return 0;
	if ((p[0] == 'e' || p[0] == 'E') && p[1] &&
	    (p[1] == '-' || p[1] == '+' || (p[1] >= '0' && p[1] <= '9'))) {
		const char *x = p + 1;
		bool eneg = false;
		int e = 0, n = 0;

		if (*x == '+' || *x == '-')
			eneg = *x++ == '-';
		for (; *x >= '0' && *x <= '9'; x++, n++)
			if (e < 100000)
				e = e * 10 + (*x - '0');
		if (n == 0 || *x)
			return -EINVAL;
		q->exp10 += eneg ? -e : e;
		return 0;
	}
	static const struct {
		const char *sfx;
		int e10, e2;
	} sfx[] = {
		{ "Ki", 0, 10 }, { "Mi", 0, 20 }, { "Gi", 0, 30 }, { "Ti", 0, 40 }, { "Pi", 0, 50 },
		{ "Ei", 0, 60 }, { "n", -9, 0 },  { "u", -6, 0 },  { "m", -3, 0 },  { "k", 3, 0 },
		{ "M", 6, 0 },	 { "G", 9, 0 },	  { "T", 12, 0 },  { "P", 15, 0 },  { "E", 18, 0 },
	};
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (strcmp(p, sfx[i].sfx) == 0) {
			q->exp10 += sfx[i].e10;
			q->exp2 = sfx[i].e2;
			return 0;
		}
	}
	return -EINVAL;
}

bool quantity_valid(const char *s)
{
	struct qty q;

	return qty_parse(s, &q) == 0;
}

/* value * 10^scale, rounded away from zero (Kubernetes rounds up the magnitude). */
static int qty_scaled(const char *s, int scale, int64_t *ret)
{
	struct qty q;
	__int128 v;
	int e, r;

	r = qty_parse(s, &q);
	if (r < 0)
		return r;
	v = q.mant;
	if (v == 0) {
		*ret = 0;
		return 0;
	}
	for (int i = 0; i < q.exp2; i++) {
		v <<= 1;
		if (v > ((__int128)1 << 120))
			return -ERANGE;
	}
	e = q.exp10 + scale;
	for (; e > 0; e--) {
		v *= 10;
		if (v > ((__int128)1 << 120))
			return -ERANGE;
	}
	if (e < 0) {
		bool rem = false;

		for (; e < 0 && v; e++) {
			rem |= v % 10 != 0;
			v /= 10;
		}
		if (e < 0 || rem)
			v += 1; /* ceil */
	}
	if (v > INT64_MAX)
		return -ERANGE;
	*ret = q.neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int quantity_parse_milli(const char *s, int64_t *ret)
{
	return qty_scaled(s, 3, ret);
}

int quantity_parse_bytes(const char *s, int64_t *ret)
{
	return qty_scaled(s, 0, ret);
}
