// SPDX-License-Identifier: Apache-2.0
/* nftables through libnftnl + libmnl: batches, their acks, extended-ack messages. */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "netplugin/nft.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

#define NFT_FAMILY NFPROTO_IPV4
#define NFT_BUF (256 * 1024)
#define COMMENT_PREFIX "shoal:"

DEFINE_CLEANUP_FUNC(struct nftnl_table, nftnl_table_free)
DEFINE_CLEANUP_FUNC(struct nftnl_chain, nftnl_chain_free)
DEFINE_CLEANUP_FUNC(struct nftnl_rule, nftnl_rule_free)
DEFINE_CLEANUP_FUNC(struct mnl_socket, mnl_socket_close)

struct batch {
	struct mnl_socket *nl;
	char *buf;
	struct mnl_nlmsg_batch *b;
	uint32_t seq;
	int nmsgs; /* messages expecting an ack */
};

static void batch_free(struct batch *bt)
{
	if (bt->b)
		mnl_nlmsg_batch_stop(bt->b);
	free(bt->buf);
	if (bt->nl)
		mnl_socket_close(bt->nl);
	memset(bt, 0, sizeof(*bt));
}

static int nft_socket(struct mnl_socket **ret, struct err *e)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	int one = 1;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = errno;
		if (nl)
			mnl_socket_close(nl);
		return err_set(e, r, 500, "InternalError", "nftables netlink socket: %s",
			       strerror(r));
	}
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	*ret = nl;
	return 0;
}

static int batch_start(struct batch *bt, struct err *e)
{
	int r;

	memset(bt, 0, sizeof(*bt));
	r = nft_socket(&bt->nl, e);
	if (r < 0)
		return r;
	bt->buf = calloc(1, NFT_BUF); /* zeroed: attribute padding goes to the kernel */
	if (!bt->buf) {
		batch_free(bt);
		return -ENOMEM;
	}
	bt->seq = (uint32_t)time(NULL);
	bt->b = mnl_nlmsg_batch_start(bt->buf, NFT_BUF);
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), bt->seq++);
	mnl_nlmsg_batch_next(bt->b);
	return 0;
}

static struct nlmsghdr *batch_hdr(struct batch *bt, uint16_t type, uint16_t flags)
{
	bt->nmsgs++;
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFT_FAMILY,
				     flags | NLM_F_ACK, bt->seq++);
}

static void batch_next(struct batch *bt)
{
	mnl_nlmsg_batch_next(bt->b);
}

/* Extended-ack message of an NLMSG_ERROR, if any. */
static void extack_msg(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*err);
	const struct nlattr *a;

	buf[0] = 0;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += err->msg.nlmsg_len - sizeof(err->msg);
	off = MNL_ALIGN(off);
	for (a = (const struct nlattr *)((const char *)err + off);
	     mnl_attr_ok(a, (int)((const char *)nlh + nlh->nlmsg_len - (const char *)a));
	     a = mnl_attr_next(a))
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
			snprintf(buf, len, "%.*s", (int)mnl_attr_get_payload_len(a),
				 (const char *)mnl_attr_get_payload(a));
}

/* Send the batch and wait for one ack per message; the first error wins. */
static int batch_commit(struct batch *bt, const char *what, struct err *e)
{
	char rbuf[MNL_SOCKET_BUFFER_SIZE];
	int first_err = 0, nacks = 0;
	char msg[256] = "";

	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->seq++);
	mnl_nlmsg_batch_next(bt->b);
	if (mnl_socket_sendto(bt->nl, mnl_nlmsg_batch_head(bt->b), mnl_nlmsg_batch_size(bt->b)) < 0)
		return err_set(e, errno, 500, "InternalError", "nftables %s: send: %s", what,
			       strerror(errno));
	while (nacks < bt->nmsgs) {
		struct pollfd p = {.fd = mnl_socket_get_fd(bt->nl), .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return err_set(e, ETIMEDOUT, 500, "InternalError",
				       "nftables %s: no answer from the kernel", what);
		n = mnl_socket_recvfrom(bt->nl, rbuf, sizeof(rbuf));
		if (n < 0)
			return err_set(e, errno, 500, "InternalError", "nftables %s: recv: %s",
				       what, strerror(errno));
		for (const struct nlmsghdr *nlh = (void *)rbuf; mnl_nlmsg_ok(nlh, (int)n);
		     nlh = mnl_nlmsg_next(nlh, (int *)&n)) {
			const struct nlmsgerr *er;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			er = mnl_nlmsg_get_payload(nlh);
			nacks++;
			if (er->error && !first_err) {
				first_err = -er->error;
				extack_msg(nlh, msg, sizeof(msg));
			}
		}
	}
	if (first_err)
		return err_set(e, first_err, 500, "InternalError", "nftables %s: %s%s%s%s", what,
			       msg, msg[0] ? " (" : "", strerror(first_err), msg[0] ? ")" : "");
	return 0;
}

/* --- expression builders --- */

static int add_expr(struct nftnl_rule *r, struct nftnl_expr *x)
{
	if (!x)
		return -ENOMEM;
	nftnl_rule_add_expr(r, x);
	return 0;
}

static int e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *x = nftnl_expr_alloc("payload");

	if (x) {
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, len);
	}
	return add_expr(r, x);
}

static int e_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *x = nftnl_expr_alloc("cmp");

	if (x) {
		nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return add_expr(r, x);
}

/* reg1 = reg1 & mask (network byte order 32 bit) */
static int e_mask(struct nftnl_rule *r, uint32_t mask_be)
{
	struct nftnl_expr *x = nftnl_expr_alloc("bitwise");
	uint32_t zero = 0;

	if (x) {
		nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_LEN, 4);
		nftnl_expr_set(x, NFTNL_EXPR_BITWISE_MASK, &mask_be, 4);
		nftnl_expr_set(x, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
	}
	return add_expr(r, x);
}

/* ip saddr/daddr (op) net/prefix */
static int e_ip_net(struct nftnl_rule *r, bool daddr, uint32_t op, uint32_t net, int prefix)
{
	uint32_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	uint32_t nbe = htonl(net);
	int ret = e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 16 : 12, 4);

	if (!ret && prefix < 32)
		ret = e_mask(r, mask);
	return ret ?: e_cmp(r, op, &nbe, 4);
}

static int e_meta(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *x = nftnl_expr_alloc("meta");

	if (x) {
		nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return add_expr(r, x);
}

static int e_imm_data(struct nftnl_rule *r, uint32_t reg, const void *data, uint32_t len)
{
	struct nftnl_expr *x = nftnl_expr_alloc("immediate");

	if (x) {
		nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, reg);
		nftnl_expr_set(x, NFTNL_EXPR_IMM_DATA, data, len);
	}
	return add_expr(r, x);
}

static int e_jump(struct nftnl_rule *r, const char *chain)
{
	struct nftnl_expr *x = nftnl_expr_alloc("immediate");

	if (x) {
		nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_VERDICT, NFT_JUMP);
		nftnl_expr_set_str(x, NFTNL_EXPR_IMM_CHAIN, chain);
	}
	return add_expr(r, x);
}

/* fib daddr type local */
static int e_fib_daddr_local(struct nftnl_rule *r)
{
	struct nftnl_expr *x = nftnl_expr_alloc("fib");
	uint32_t local = RTN_LOCAL;

	if (x) {
		nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	}
	return add_expr(r, x) ?: e_cmp(r, NFT_CMP_EQ, &local, 4);
}

static struct nftnl_rule *rule_new(const char *table, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFT_FAMILY);
	return r;
}

static int rule_comment(struct nftnl_rule *r, const char *comment)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);

	if (!u)
		return -ENOMEM;
	if (!nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, comment)) {
		nftnl_udata_buf_free(u);
		return -E2BIG;
	}
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u),
			    nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
	return 0;
}

static void batch_rule(struct batch *bt, uint16_t type, uint16_t flags, struct nftnl_rule *r)
{
	nftnl_rule_nlmsg_build_payload(batch_hdr(bt, type, flags), r);
	batch_next(bt);
}

/* --- table --- */

static void batch_chain(struct batch *bt, const char *table, const char *name, int hook, int prio)
{
	_cleanup_(nftnl_chain_freep) struct nftnl_chain *c = nftnl_chain_alloc();

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (hook >= 0) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nftnl_chain_nlmsg_build_payload(batch_hdr(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE), c);
	batch_next(bt);
}

static void batch_flush_chain(struct batch *bt, const char *table, const char *chain)
{
	_cleanup_(nftnl_rule_freep) struct nftnl_rule *r = rule_new(table, chain);

	batch_rule(bt, NFT_MSG_DELRULE, 0, r);
}

static bool valid_name(const char *table)
{
	return !strempty(table) && strlen(table) < NFT_TABLE_MAXNAMELEN;
}

int np_nft_node_setup(const char *table, uint32_t pod_net, int pod_prefix, uint32_t cluster_net,
		      int cluster_prefix, struct err *e)
{
	_cleanup_(nftnl_table_freep) struct nftnl_table *t = nftnl_table_alloc();
	_cleanup_(nftnl_rule_freep) struct nftnl_rule *masq = NULL, *pre = NULL, *out = NULL;
	struct batch bt;
	int r;

	if (!valid_name(table))
		return err_set(e, EINVAL, 400, "Invalid", "bad nftables table name");
	if (!t)
		return -ENOMEM;
	masq = rule_new(table, "postrouting");
	pre = rule_new(table, "prerouting");
	out = rule_new(table, "output");
	if (!masq || !pre || !out)
		return -ENOMEM;
	r = e_ip_net(masq, false, NFT_CMP_EQ, pod_net, pod_prefix);
	r = r ?: e_ip_net(masq, true, NFT_CMP_NEQ, cluster_net, cluster_prefix);
	r = r ?: add_expr(masq, nftnl_expr_alloc("masq"));
	r = r ?: rule_comment(masq, COMMENT_PREFIX "masquerade");
	r = r ?: e_fib_daddr_local(pre);
	r = r ?: e_jump(pre, "hostports");
	r = r ?: e_fib_daddr_local(out);
	r = r ?: e_jump(out, "hostports");
	if (r < 0)
		return r;

	r = batch_start(&bt, e);
	if (r < 0)
		return r;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	nftnl_table_nlmsg_build_payload(batch_hdr(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE), t);
	batch_next(&bt);
	batch_chain(&bt, table, "hostports", -1, 0);
	batch_chain(&bt, table, "postrouting", NF_INET_POST_ROUTING, 100);
	batch_chain(&bt, table, "prerouting", NF_INET_PRE_ROUTING, -100);
	batch_chain(&bt, table, "output", NF_INET_LOCAL_OUT, -100);
	/* rebuild the fixed chains in the same transaction: idempotent, never half-applied */
	batch_flush_chain(&bt, table, "postrouting");
	batch_flush_chain(&bt, table, "prerouting");
	batch_flush_chain(&bt, table, "output");
	batch_rule(&bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, masq);
	batch_rule(&bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, pre);
	batch_rule(&bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, out);
	r = batch_commit(&bt, "table setup", e);
	batch_free(&bt);
	return r;
}

int np_nft_node_teardown(const char *table, struct err *e)
{
	_cleanup_(nftnl_table_freep) struct nftnl_table *t = nftnl_table_alloc();
	struct err tmp = {0};
	struct batch bt;
	int r;

	if (!valid_name(table))
		return err_set(e, EINVAL, 400, "Invalid", "bad nftables table name");
	if (!t)
		return -ENOMEM;
	r = batch_start(&bt, e);
	if (r < 0)
		return r;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	nftnl_table_nlmsg_build_payload(batch_hdr(&bt, NFT_MSG_DELTABLE, 0), t);
	batch_next(&bt);
	r = batch_commit(&bt, "table delete", &tmp);
	batch_free(&bt);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0 && e)
		*e = tmp;
	return r;
}

/* --- hostPort rules --- */

struct rule_list {
	const char *comment; /* NULL: all */
	uint64_t *handles;
	size_t n, cap;
	int err;
};

static int udata_cb(const struct nftnl_udata *attr, void *data)
{
	const struct nftnl_udata **tb = data;

	if (nftnl_udata_type(attr) <= NFTNL_UDATA_RULE_MAX)
		tb[nftnl_udata_type(attr)] = attr;
	return 0;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rule_list *l = data;
	_cleanup_(nftnl_rule_freep) struct nftnl_rule *r = nftnl_rule_alloc();
	const struct nftnl_udata *tb[NFTNL_UDATA_RULE_MAX + 1] = {0};
	const void *ud;
	uint32_t udlen;

	if (!r || nftnl_rule_nlmsg_parse(nlh, r) < 0)
		return MNL_CB_OK;
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &udlen);
	if (!ud || nftnl_udata_parse(ud, udlen, udata_cb, tb) < 0 || !tb[NFTNL_UDATA_RULE_COMMENT])
		return MNL_CB_OK;
	const char *c = nftnl_udata_get(tb[NFTNL_UDATA_RULE_COMMENT]);
	if (strncmp(c, COMMENT_PREFIX, strlen(COMMENT_PREFIX)))
		return MNL_CB_OK;
	if (l->comment && strcmp(c, l->comment))
		return MNL_CB_OK;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *h = realloc(l->handles, cap * sizeof(*h));
		if (!h) {
			l->err = -ENOMEM;
			return MNL_CB_ERROR;
		}
		l->handles = h;
		l->cap = cap;
	}
	l->handles[l->n++] = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
	return MNL_CB_OK;
}

static int hostport_rules(const char *table, struct rule_list *l, struct err *e)
{
	_cleanup_(mnl_socket_closep) struct mnl_socket *nl = NULL;
	_cleanup_(nftnl_rule_freep) struct nftnl_rule *r = rule_new(table, "hostports");
	_cleanup_free_ char *buf = calloc(1, NFT_BUF);
	struct nlmsghdr *nlh;
	uint32_t seq = (uint32_t)time(NULL), portid;
	int ret;

	if (!r || !buf)
		return -ENOMEM;
	ret = nft_socket(&nl, e);
	if (ret < 0)
		return ret;
	portid = mnl_socket_get_portid(nl);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFT_FAMILY, NLM_F_DUMP, seq);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return err_set(e, errno, 500, "InternalError", "nftables list: %s",
			       strerror(errno));
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, NFT_BUF);
		if (n < 0)
			return err_set(e, errno, 500, "InternalError", "nftables list: %s",
				       strerror(errno));
		ret = mnl_cb_run(buf, n, seq, portid, rule_cb, l);
		if (ret < 0) {
			if (l->err)
				return l->err;
			if (errno == ENOENT)
				return -ENOENT;
			return err_set(e, errno, 500, "InternalError", "nftables list table %s: %s",
				       table, strerror(errno));
		}
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

static int owner_comment(const char *owner, char *buf, size_t len, struct err *e)
{
	if (strempty(owner) || strlen(owner) + strlen(COMMENT_PREFIX) >= len)
		return err_set(e, EINVAL, 400, "Invalid", "hostPort owner missing or too long");
	snprintf(buf, len, COMMENT_PREFIX "%s", owner);
	return 0;
}

static void batch_delrules(struct batch *bt, const char *table, const struct rule_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		_cleanup_(nftnl_rule_freep) struct nftnl_rule *r = rule_new(table, "hostports");
		nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, l->handles[i]);
		batch_rule(bt, NFT_MSG_DELRULE, 0, r);
	}
}

static int hostport_rule(const char *table, const char *comment, uint32_t pod_ip,
			 const struct np_port_mapping *m, struct nftnl_rule **ret)
{
	_cleanup_(nftnl_rule_freep) struct nftnl_rule *r = rule_new(table, "hostports");
	struct nftnl_expr *nat;
	uint8_t proto = m->proto;
	uint16_t hport = htons(m->host_port), cport = htons(m->container_port);
	uint32_t ip = htonl(pod_ip), hip = htonl(m->host_ip);
	int rc;

	if (!r)
		return -ENOMEM;
	rc = e_meta(r, NFT_META_L4PROTO);
	rc = rc ?: e_cmp(r, NFT_CMP_EQ, &proto, 1);
	rc = rc ?: e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	rc = rc ?: e_cmp(r, NFT_CMP_EQ, &hport, 2);
	if (!rc && m->host_ip) {
		rc = e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
		rc = rc ?: e_cmp(r, NFT_CMP_EQ, &hip, 4);
	}
	rc = rc ?: e_imm_data(r, NFT_REG_1, &ip, 4);
	rc = rc ?: e_imm_data(r, NFT_REG_2, &cport, 2);
	if (rc < 0)
		return rc;
	nat = nftnl_expr_alloc("nat");
	if (!nat)
		return -ENOMEM;
	nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
	nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
	nftnl_rule_add_expr(r, nat);
	rc = rule_comment(r, comment);
	if (rc < 0)
		return rc;
	*ret = TAKE_PTR(r);
	return 0;
}

int np_nft_hostports_set(const char *table, const char *owner, uint32_t pod_ip,
			 const struct np_port_mapping *m, size_t n, struct err *e)
{
	char comment[NFT_USERDATA_MAXLEN - 8];
	struct rule_list l = {.comment = comment};
	struct batch bt;
	int r;

	if (!valid_name(table))
		return err_set(e, EINVAL, 400, "Invalid", "bad nftables table name");
	r = owner_comment(owner, comment, sizeof(comment), e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (!m[i].host_port || !m[i].container_port ||
		    (m[i].proto != IPPROTO_TCP && m[i].proto != IPPROTO_UDP &&
		     m[i].proto != IPPROTO_SCTP))
			return err_set(e, EINVAL, 422, "Invalid",
				       "hostPort mapping %zu: ports must be 1-65535 and protocol "
				       "TCP, UDP or SCTP",
				       i);
	r = hostport_rules(table, &l, e);
	if (r == -ENOENT)
		return err_set(e, ENOENT, 500, "InternalError",
			       "nftables table %s is missing (node network not set up)", table);
	if (r < 0)
		goto out;
	r = batch_start(&bt, e);
	if (r < 0)
		goto out;
	batch_delrules(&bt, table, &l);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct nftnl_rule *rule = NULL;
		r = hostport_rule(table, comment, pod_ip, &m[i], &rule);
		if (r == 0) {
			batch_rule(&bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, rule);
			nftnl_rule_free(rule);
		}
	}
	if (r == 0 && bt.nmsgs > 0)
		r = batch_commit(&bt, "hostPort rules", e);
	batch_free(&bt);
	if (r == 0)
		r = (int)l.n; /* rules replaced */
out:
	free(l.handles);
	return r;
}

int np_nft_hostports_del(const char *table, const char *owner, struct err *e)
{
	return np_nft_hostports_set(table, owner, 0, NULL, 0, e);
}

int np_nft_hostports_count(const char *table, const char *owner, struct err *e)
{
	char comment[NFT_USERDATA_MAXLEN - 8];
	struct rule_list l = {.comment = owner ? comment : NULL};
	int r;

	if (owner) {
		r = owner_comment(owner, comment, sizeof(comment), e);
		if (r < 0)
			return r;
	}
	r = hostport_rules(table, &l, e);
	free(l.handles);
	return r < 0 ? r : (int)l.n;
}
