// SPDX-License-Identifier: Apache-2.0
/*
 * DaemonSet: one pod per eligible Node, bound to it at creation (spec.nodeName, and the
 * metadata.name node affinity Kubernetes' controller writes), so no placement is involved.
 *
 * Eligibility is Kubernetes' NodeShouldRunDaemonPod over sched/placement.h's filters: the
 * template's nodeName, nodeSelector and required node affinity must match, and its taints must
 * be tolerated once the DaemonSet tolerations are added (not-ready/unreachable NoExecute, the
 * pressure and unschedulable NoSchedule taints: a cordoned node keeps its daemon). A node whose
 * only untolerated taints are NoSchedule keeps a pod it already runs but gets no new one.
 *
 * Each template is snapshotted in a ControllerRevision "<ds>-<hash>" whose data is the
 * strategic merge patch kubectl applies on `rollout undo` ({"spec":{"template":{"$patch":
 * "replace",...}}}); going back to an old template makes its revision the newest. Pods carry the
 * revision's hash in the controller-revision-hash label, which is how up-to-date is judged.
 *
 * RollingUpdate follows Kubernetes' controller: with maxSurge 0, old pods are deleted (the
 * unavailable ones at once, the others while no more than maxUnavailable nodes lack an
 * available pod) and a node gets its new pod once the old one is gone; with maxSurge > 0 the new
 * pod starts next to the old one on up to maxSurge nodes, and the old one goes when the new one
 * is available. OnDelete only fills nodes without a pod.
 */
#include <inttypes.h>
#include <string.h>

#include "api/object.h"
#include "lib/macro.h"
#include "lib/util.h"
#include "sched/ctrl-internal.h"
#include "sched/placement.h"

#define LABEL_HASH "controller-revision-hash"
#define LABEL_GEN "pod-template-generation"
#define ANN_CHANGE_CAUSE "kubernetes.io/change-cause"
/* A failed daemon pod is replaced no sooner than this after it was created, so a pod its node
 * rejects at once (admission) does not make a hot create/delete loop. */
#define DS_FAILED_RETRY_S 10
#define DS_COMPONENT "daemonset-controller" /* Events' source */

DEFINE_CLEANUP_FUNC(struct label_selector, label_selector_free)

/* The tolerations Kubernetes adds to every daemon pod (AddOrUpdateDaemonPodTolerations). */
static const struct {
	const char *key, *effect;
	bool host_network; /* only for hostNetwork pods */
} ds_tolerations[] = {
    {"node.kubernetes.io/not-ready", "NoExecute", false},
    {"node.kubernetes.io/unreachable", "NoExecute", false},
    {"node.kubernetes.io/disk-pressure", "NoSchedule", false},
    {"node.kubernetes.io/memory-pressure", "NoSchedule", false},
    {"node.kubernetes.io/pid-pressure", "NoSchedule", false},
    {"node.kubernetes.io/unschedulable", "NoSchedule", false},
    {"node.kubernetes.io/network-unavailable", "NoSchedule", true},
};

static bool has_toleration(const cJSON *tols, const char *key, const char *effect)
{
	const cJSON *t;

	cJSON_ArrayForEach(t,
			   tols) if (streq(json_str(t, "key", ""), key) &&
				     streq(json_str(t, "effect", ""), effect) &&
				     streq(json_str(t, "operator", "Equal"), "Exists")) return true;
	return false;
}

/* A pod spec copy with the daemon tolerations added (the ones not already there). */
static void add_daemon_tolerations(cJSON *spec)
{
	cJSON *tols = cJSON_GetObjectItemCaseSensitive(spec, "tolerations");
	bool hostnet = json_bool(spec, "hostNetwork", false);

	if (!cJSON_IsArray(tols)) {
		cJSON_DeleteItemFromObject(spec, "tolerations");
		tols = cJSON_AddArrayToObject(spec, "tolerations");
	}
	for (size_t i = 0; i < ARRAY_SIZE(ds_tolerations); i++) {
		if (ds_tolerations[i].host_network && !hostnet)
			continue;
		if (has_toleration(tols, ds_tolerations[i].key, ds_tolerations[i].effect))
			continue;
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "key", ds_tolerations[i].key);
		cJSON_AddStringToObject(t, "operator", "Exists");
		cJSON_AddStringToObject(t, "effect", ds_tolerations[i].effect);
		cJSON_AddItemToArray(tols, t);
	}
}

static void add_toleration_exists(cJSON *spec, const char *effect)
{
	cJSON *tols = cJSON_GetObjectItemCaseSensitive(spec, "tolerations");
	cJSON *t = cJSON_CreateObject();

	if (!cJSON_IsArray(tols)) {
		cJSON_DeleteItemFromObject(spec, "tolerations");
		tols = cJSON_AddArrayToObject(spec, "tolerations");
	}
	cJSON_AddStringToObject(t, "operator", "Exists");
	if (effect)
		cJSON_AddStringToObject(t, "effect", effect);
	cJSON_AddItemToArray(tols, t);
}

/* Three views of the template for the filters: with the daemon tolerations; plus tolerating
 * every NoSchedule taint (may a running pod stay?); tolerating everything (affinity alone). */
struct ds_fit {
	cJSON *pods[3];
	struct sched_pod sp[3];
	int n;
};

static void ds_fit_release(struct ds_fit *f)
{
	for (int i = 0; i < f->n; i++)
		sched_pod_release(&f->sp[i]);
	for (int i = 0; i < 3; i++)
		cJSON_Delete(f->pods[i]);
}

static int ds_fit_init(struct ds_fit *f, const cJSON *ds)
{
	const cJSON *tspec = json_path(ds, "spec.template.spec");
	int r;

	*f = (struct ds_fit){0};
	for (int i = 0; i < 3; i++) {
		cJSON *pod = cJSON_CreateObject(), *spec;
		if (!pod)
			return -ENOMEM;
		f->pods[i] = pod;
		spec = cJSON_Duplicate(cJSON_IsObject(tspec) ? tspec : NULL, 1);
		if (!spec)
			spec = cJSON_CreateObject();
		if (!spec)
			return -ENOMEM;
		cJSON_AddItemToObject(pod, "spec", spec);
		add_daemon_tolerations(spec);
		if (i == 1)
			add_toleration_exists(spec, "NoSchedule");
		if (i == 2)
			add_toleration_exists(spec, NULL);
		r = sched_pod_init(&f->sp[i], pod);
		if (r < 0)
			return r;
		f->n = i + 1;
	}
	return 0;
}

/*
 * Kubernetes' NodeShouldRunDaemonPod: should a new daemon pod start on the node, and may one
 * that runs there stay? Resources and host ports are not the controller's concern (the node's
 * admission is), nor is cordoning (the unschedulable taint is tolerated).
 */
static void ds_should_run(const struct ds_fit *f, const cJSON *node, bool *run, bool *stay)
{
	struct sched_node sn;

	*run = *stay = false;
	if (sched_node_init(&sn, node) < 0)
		return;
	sn.unschedulable = false;
	if (sched_filter(&f->sp[2], &sn, NULL) & (SCHED_R_NODE_NAME | SCHED_R_AFFINITY))
		goto out;
	if (!(sched_filter(&f->sp[0], &sn, NULL) & SCHED_R_TAINT)) {
		*run = *stay = true;
		goto out;
	}
	/* an untolerated NoSchedule taint keeps new pods off; only NoExecute evicts */
	*stay = !(sched_filter(&f->sp[1], &sn, NULL) & SCHED_R_TAINT);
out:
	sched_node_release(&sn);
}

/* ---- ControllerRevisions ---- */

/* The revision's data: the patch that restores this template (kubectl's getDaemonSetPatch). */
static cJSON *ds_revision_data(const cJSON *ds)
{
	cJSON *data = cJSON_CreateObject(), *spec, *tmpl;

	if (!data)
		return NULL;
	spec = cJSON_AddObjectToObject(data, "spec");
	tmpl = cJSON_Duplicate(json_path(ds, "spec.template"), 1);
	if (!cJSON_IsObject(tmpl)) {
		cJSON_Delete(tmpl);
		tmpl = cJSON_CreateObject();
	}
	cJSON_AddStringToObject(tmpl, "$patch", "replace");
	cJSON_AddItemToObject(spec, "template", tmpl);
	/* sorted keys, as Go marshals the map kubectl compares it with */
	char *canon = json_canonical(data);
	cJSON_Delete(data);
	if (!canon)
		return NULL;
	data = cJSON_Parse(canon);
	free(canon);
	return data;
}

static int64_t crev_revision(const cJSON *cr)
{
	return json_int(cr, "revision", 0);
}

static int crev_cmp(const void *pa, const void *pb)
{
	int64_t a = crev_revision(*(const cJSON *const *)pa);
	int64_t b = crev_revision(*(const cJSON *const *)pb);
	return a < b ? -1 : a > b;
}

static bool crev_data_equal(const cJSON *cr, const cJSON *data)
{
	_cleanup_free_ char *a = json_canonical(json_path(cr, "data"));
	_cleanup_free_ char *b = json_canonical(data);

	return a && b && streq(a, b);
}

static int crev_create(struct ctrl_mgr *m, const cJSON *ds, const char *ns, const char *name,
		       const char *hash, const cJSON *data, int64_t revision)
{
	_cleanup_json_ cJSON *cr = cJSON_CreateObject();
	cJSON *md, *labels, *refs;
	const cJSON *ann = json_path(ds, "metadata.annotations");
	char crname[300];
	struct err e = {0};

	if (!cr)
		return -ENOMEM;
	snprintf(crname, sizeof(crname), "%s-%s", name, hash);
	cJSON_AddStringToObject(cr, "apiVersion", "apps/v1");
	cJSON_AddStringToObject(cr, "kind", "ControllerRevision");
	md = cJSON_AddObjectToObject(cr, "metadata");
	cJSON_AddStringToObject(md, "name", crname);
	cJSON_AddStringToObject(md, "namespace", ns);
	labels = cJSON_Duplicate(json_path(ds, "spec.template.metadata.labels"), 1);
	if (!cJSON_IsObject(labels)) {
		cJSON_Delete(labels);
		labels = cJSON_CreateObject();
	}
	json_set_str(labels, LABEL_HASH, hash);
	cJSON_AddItemToObject(md, "labels", labels);
	/* the DaemonSet's annotations go with it (kubernetes.io/change-cause for history) */
	if (cJSON_IsObject(ann)) {
		cJSON *a = cJSON_Duplicate(ann, 1);
		cJSON_DeleteItemFromObject(a, "kubectl.kubernetes.io/last-applied-configuration");
		cJSON_DeleteItemFromObject(a, "deprecated.daemonset.template.generation");
		cJSON_AddItemToObject(md, "annotations", a);
	}
	refs = cJSON_AddArrayToObject(md, "ownerReferences");
	cJSON_AddItemToArray(refs, ctrl_owner_ref_new("apps/v1", "DaemonSet", ds, true));
	cJSON_AddItemToObject(cr, "data", cJSON_Duplicate(data, 1));
	cJSON_AddNumberToObject(cr, "revision", (double)revision);
	return api_obj_create(ctrl_store(m), cr, NULL, &e);
}

/*
 * The current revision of ds: the one whose data is the template's, created when missing and
 * made the newest when an older template came back. Its hash goes to *hash; the other
 * revisions the DaemonSet controls stay in revs (sorted by revision, current one removed).
 */
static int ds_current_revision(struct ctrl_mgr *m, const cJSON *ds, const char *ns,
			       const char *name, const cJSON *data, cJSON *revs, char *hash,
			       size_t hlen, int64_t *collisions)
{
	const char *uid = json_str(ds, "metadata.uid", "");
	cJSON *cr, *cur = NULL, *next;
	int64_t max_rev = 0;
	int r;

	for (cr = revs->child; cr; cr = next) {
		next = cr->next;
		if (!ctrl_is_controlled_by(cr, uid) || ctrl_terminating(cr)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(revs, cr));
			continue;
		}
		if (crev_revision(cr) > max_rev)
			max_rev = crev_revision(cr);
		/* the newest of equal ones (a revision we bumped, or duplicates from two owners) */
		if (crev_data_equal(cr, data) && (!cur || crev_revision(cr) > crev_revision(cur)))
			cur = cr;
	}
	if (cur) {
		snprintf(hash, hlen, "%s", json_key_str(cur, "metadata.labels", LABEL_HASH, ""));
		if (crev_revision(cur) < max_rev) {
			_cleanup_json_ cJSON *c = cJSON_Duplicate(cur, 1);
			json_set_int(c, "revision", max_rev + 1);
			cJSON *md = json_path(c, "metadata");
			if (md)
				cJSON_DeleteItemFromObject(md, "resourceVersion");
			r = ctrl_update(m, c);
			if (r < 0)
				return r;
		}
		cJSON_Delete(cJSON_DetachItemViaPointer(revs, cur));
		return 0;
	}
	ctrl_template_hash(json_path(ds, "spec.template"), (uint32_t)*collisions, hash, hlen);
	r = crev_create(m, ds, ns, name, hash, data, max_rev + 1);
	if (r == -EEXIST) {
		/* another object holds the name: ours created by a concurrent owner (same data,
		 * next pass finds it) or a real hash collision, which moves to the next name */
		struct store_obj *o = NULL;
		char crname[300];
		snprintf(crname, sizeof(crname), "%s-%s", name, hash);
		if (store_get(ctrl_store(m), "controllerrevisions.apps", ns, crname, &o) == 0) {
			_cleanup_json_ cJSON *j = store_obj_parse(o);
			store_obj_unref(o);
			if (j && !(ctrl_is_controlled_by(j, uid) && crev_data_equal(j, data)))
				(*collisions)++;
		}
		return -EAGAIN;
	}
	return r;
}

/* Old revisions beyond revisionHistoryLimit, oldest first, unless a pod still runs them. */
static void ds_prune_history(struct ctrl_mgr *m, const cJSON *ds, const char *ns, cJSON *old,
			     const cJSON *pods)
{
	int64_t keep = json_int(ds, "spec.revisionHistoryLimit", 10);
	int64_t kill = cJSON_GetArraySize(old) - keep;
	size_t n = (size_t)cJSON_GetArraySize(old), i = 0;
	const cJSON *cr, *pod;

	if (kill <= 0)
		return;
	_cleanup_free_ const cJSON **v = calloc(n, sizeof(*v));
	if (!v)
		return;
	cJSON_ArrayForEach(cr, old) v[i++] = cr;
	qsort(v, n, sizeof(*v), crev_cmp);
	for (i = 0; i < n && kill > 0; i++) {
		const char *h = json_key_str(v[i], "metadata.labels", LABEL_HASH, "");
		bool live = false;
		cJSON_ArrayForEach(
		    pod, pods) if (*h && streq(json_key_str(pod, "metadata.labels", LABEL_HASH, ""),
					       h)) live = true;
		if (live)
			continue;
		ctrl_delete(m, "controllerrevisions.apps", ns, json_str(v[i], "metadata.name", ""),
			    NULL);
		kill--;
	}
}

/* ---- pods per node ---- */

struct ds_node {
	const char *name;
	const cJSON *node; /* NULL: a node that no longer exists */
	bool run, stay;
	const cJSON **pods; /* the daemon pods bound to it, oldest first */
	size_t npods;
};

/* Kubernetes' podByCreationTimestampAndPhase: bound first, then oldest, then by name. */
static int pod_age_cmp(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
	bool as = *json_str(a, "spec.nodeName", ""), bs = *json_str(b, "spec.nodeName", "");
	int c;

	if (as != bs)
		return as ? -1 : 1;
	c = strcmp(json_str(a, "metadata.creationTimestamp", ""),
		   json_str(b, "metadata.creationTimestamp", ""));
	return c ? c : strcmp(json_str(a, "metadata.name", ""), json_str(b, "metadata.name", ""));
}

/* The node a daemon pod is for: spec.nodeName, else its metadata.name node affinity. */
static const char *pod_target_node(const cJSON *pod)
{
	const char *n = json_str(pod, "spec.nodeName", "");
	const cJSON *t, *f;

	if (*n)
		return n;
	cJSON_ArrayForEach(t, json_path(pod, "spec.affinity.nodeAffinity."
					     "requiredDuringSchedulingIgnoredDuringExecution."
					     "nodeSelectorTerms"))
	    cJSON_ArrayForEach(
		f,
		json_path(t, "matchFields")) if (streq(json_str(f, "key", ""), "metadata.name") &&
						 cJSON_GetArraySize(json_path(f, "values")) ==
						     1) return json_path(f, "values")
		->child->valuestring;
	return NULL;
}

static bool pod_is_new(const cJSON *pod, const char *hash)
{
	return streq(json_key_str(pod, "metadata.labels", LABEL_HASH, ""), hash);
}

/* The daemon pod for one node: the template with the hash label, the daemon tolerations, the
 * node affinity Kubernetes writes and the binding. */
static int ds_pod_create(struct ctrl_mgr *m, const cJSON *ds, const char *ns, const char *name,
			 const char *node, const char *hash, char *pod_name, size_t len,
			 struct err *e)
{
	_cleanup_json_ cJSON *tmpl = cJSON_Duplicate(json_path(ds, "spec.template"), 1);
	_cleanup_json_ cJSON *extra = cJSON_CreateObject();
	cJSON *spec, *aff, *na, *req, *terms, *term, *fields, *f, *vals;
	char gen[32];

	if (!tmpl || !extra)
		return -ENOMEM;
	spec = json_path_obj(tmpl, "spec");
	if (!spec)
		return -ENOMEM;
	add_daemon_tolerations(spec);
	/* util.ReplaceDaemonSetPodNodeNameNodeAffinity: the required terms become this node */
	aff = json_path_obj(spec, "affinity");
	na = json_path_obj(aff, "nodeAffinity");
	cJSON_DeleteItemFromObject(na, "requiredDuringSchedulingIgnoredDuringExecution");
	req = cJSON_AddObjectToObject(na, "requiredDuringSchedulingIgnoredDuringExecution");
	terms = cJSON_AddArrayToObject(req, "nodeSelectorTerms");
	term = cJSON_CreateObject();
	cJSON_AddItemToArray(terms, term);
	fields = cJSON_AddArrayToObject(term, "matchFields");
	f = cJSON_CreateObject();
	cJSON_AddItemToArray(fields, f);
	cJSON_AddStringToObject(f, "key", "metadata.name");
	cJSON_AddStringToObject(f, "operator", "In");
	vals = cJSON_AddArrayToObject(f, "values");
	cJSON_AddItemToArray(vals, cJSON_CreateString(node));
	json_set_str(spec, "nodeName", node);
	json_set_str(extra, LABEL_HASH, hash);
	snprintf(gen, sizeof(gen), "%" PRId64, json_int(ds, "metadata.generation", 1));
	json_set_str(extra, LABEL_GEN, gen);
	return ctrl_pod_create_ret(m, tmpl, ns, name,
				   ctrl_owner_ref_new("apps/v1", "DaemonSet", ds, true), extra,
				   pod_name, len, e);
}

/* Adopt a matching orphan / release an owned pod that stopped matching (as the ReplicaSet). */
static int pod_set_owner(struct ctrl_mgr *m, const cJSON *pod, const cJSON *ds, bool adopt)
{
	_cleanup_json_ cJSON *copy = cJSON_Duplicate(pod, 1);
	cJSON *md = json_path(copy, "metadata"), *refs, *r;
	const char *uid = json_str(ds, "metadata.uid", "");
	int i = 0;

	if (!md)
		return -EINVAL;
	refs = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences");
	if (adopt) {
		if (!cJSON_IsArray(refs)) {
			cJSON_DeleteItemFromObject(md, "ownerReferences");
			refs = cJSON_AddArrayToObject(md, "ownerReferences");
		}
		cJSON_AddItemToArray(refs, ctrl_owner_ref_new("apps/v1", "DaemonSet", ds, true));
		return ctrl_update(m, copy);
	}
	cJSON_ArrayForEach(r, refs)
	{
		if (streq(json_str(r, "uid", ""), uid)) {
			cJSON_DeleteItemFromArray(refs, i);
			return ctrl_update(m, copy);
		}
		i++;
	}
	return 0;
}

struct ds_sync {
	struct ctrl_mgr *m;
	const cJSON *ds;
	const char *ns, *name, *hash;
	int64_t now_s, min_ready;
	uint64_t recheck_ms;
	int failed;
	int writes; /* pods created or deleted in this pass */
	/* pod names already deleted in this pass (the manage and update steps may both pick) */
	const char **deleted;
	size_t ndeleted, capdeleted;
};

static void sync_recheck(struct ds_sync *s, uint64_t delay_ms)
{
	if (!s->recheck_ms || delay_ms < s->recheck_ms)
		s->recheck_ms = delay_ms;
}

static bool sync_available(struct ds_sync *s, const cJSON *pod)
{
	if (ctrl_pod_available(pod, s->min_ready, s->now_s))
		return true;
	if (ctrl_pod_ready(pod) && s->min_ready > 0 && ctrl_pod_active(pod))
		sync_recheck(
		    s,
		    (uint64_t)(ctrl_pod_ready_since(pod) + s->min_ready - s->now_s) * 1000 + 100);
	return false;
}

static void sync_delete(struct ds_sync *s, const cJSON *pod, int64_t grace)
{
	const char *pname = json_str(pod, "metadata.name", "");
	int r;

	for (size_t i = 0; i < s->ndeleted; i++)
		if (streq(s->deleted[i], pname))
			return;
	if (s->ndeleted == s->capdeleted) {
		size_t cap = s->capdeleted ? s->capdeleted * 2 : 16;
		const char **d = reallocarray(s->deleted, cap, sizeof(*d));
		if (!d) {
			s->failed = -ENOMEM;
			return;
		}
		s->deleted = d;
		s->capdeleted = cap;
	}
	s->deleted[s->ndeleted++] = pname;
	s->writes++;
	if (grace < 0) {
		r = ctrl_delete(s->m, "pods", s->ns, pname, NULL);
	} else {
		struct api_delete_opts o = {.grace_seconds = grace};
		struct err e = {0};
		r = api_obj_delete(ctrl_store(s->m), "pods", s->ns, pname, &o, NULL, &e);
	}
	if (r < 0 && r != -ENOENT)
		s->failed = r;
	else if (r >= 0)
		ctrl_event(s->m, DS_COMPONENT, s->ds, "Normal", "SuccessfulDelete",
			   "Deleted pod: %s", pname);
}

static void sync_create(struct ds_sync *s, const char *node)
{
	char pname[256] = "";
	struct err e = {0};
	int r = ds_pod_create(s->m, s->ds, s->ns, s->name, node, s->hash, pname, sizeof(pname), &e);

	s->writes++;
	if (r < 0) {
		s->failed = r;
		ctrl_event(s->m, DS_COMPONENT, s->ds, "Warning", "FailedCreate",
			   "Error creating: %s", e.message[0] ? e.message : strerror(-r));
	} else {
		ctrl_event(s->m, DS_COMPONENT, s->ds, "Normal", "SuccessfulCreate",
			   "Created pod: %s", pname);
	}
}

/* Kubernetes' podsShouldBeOnNode: create what is missing, delete what must not be there. */
static void sync_manage(struct ds_sync *s, struct ds_node *n, bool surge)
{
	const cJSON *running[64];
	size_t nrun = 0;

	if (!n->node) {
		/* the node is gone: its pods can never finish terminating there */
		for (size_t i = 0; i < n->npods; i++)
			sync_delete(s, n->pods[i], 0);
		return;
	}
	if (n->run && n->npods == 0) {
		sync_create(s, n->name);
		return;
	}
	if (!n->stay) {
		for (size_t i = 0; i < n->npods; i++)
			if (!ctrl_terminating(n->pods[i]))
				sync_delete(s, n->pods[i], -1);
		return;
	}
	for (size_t i = 0; i < n->npods; i++) {
		const cJSON *p = n->pods[i];
		const char *phase = json_str(p, "status.phase", "");
		if (ctrl_terminating(p))
			continue;
		if (streq(phase, "Failed")) {
			int64_t created = 0;
			util_rfc3339_parse(json_str(p, "metadata.creationTimestamp", ""), &created);
			if (created + DS_FAILED_RETRY_S > s->now_s) {
				sync_recheck(s, (uint64_t)(created + DS_FAILED_RETRY_S - s->now_s) *
							1000 +
						    100);
				continue;
			}
			/* the daemonset controller's words */
			ctrl_event(s->m, DS_COMPONENT, s->ds, "Warning", "FailedDaemonPod",
				   "Found failed daemon pod %s/%s on node %s, will try to kill it",
				   s->ns, json_str(p, "metadata.name", ""), n->name);
			sync_delete(s, p, -1);
		} else if (streq(phase, "Succeeded")) {
			sync_delete(s, p, -1);
		} else if (nrun < ARRAY_SIZE(running)) {
			running[nrun++] = p;
		} else {
			sync_delete(s, p, -1);
		}
	}
	if (!surge) {
		/* one pod per node: the oldest stays */
		for (size_t i = 1; i < nrun; i++)
			sync_delete(s, running[i], -1);
		return;
	}
	if (nrun == 0) {
		if (n->run)
			sync_create(s, n->name);
		return;
	}
	/* surge: the oldest new pod and the oldest old one may coexist while the new one is not
	 * available and the old one is ready */
	const cJSON *oldest_new = NULL, *oldest_old = NULL;
	for (size_t i = 0; i < nrun; i++) {
		if (pod_is_new(running[i], s->hash) && !oldest_new)
			oldest_new = running[i];
		else if (!pod_is_new(running[i], s->hash) && !oldest_old)
			oldest_old = running[i];
		else
			sync_delete(s, running[i], -1);
	}
	if (oldest_new && oldest_old) {
		if (!ctrl_pod_ready(oldest_old))
			sync_delete(s, oldest_old, -1);
		else if (sync_available(s, oldest_new))
			sync_delete(s, oldest_old, -1);
	}
}

/* findUpdatedPodsOnNode: at most one new and one old non-terminating pod, else false. */
static bool node_new_old(const struct ds_node *n, const char *hash, const cJSON **newp,
			 const cJSON **oldp)
{
	*newp = *oldp = NULL;
	for (size_t i = 0; i < n->npods; i++) {
		const cJSON *p = n->pods[i];
		if (ctrl_terminating(p))
			continue;
		const cJSON **slot = pod_is_new(p, hash) ? newp : oldp;
		if (*slot)
			return false;
		*slot = p;
	}
	return true;
}

/* Kubernetes' rollingUpdate, over nodes that have daemon pods. */
static void sync_rolling(struct ds_sync *s, struct ds_node *nodes, size_t nn, int64_t desired)
{
	const cJSON *ru = json_path(s->ds, "spec.updateStrategy.rollingUpdate");
	int64_t surge = ctrl_int_or_percent(json_path(ru, "maxSurge"), desired, true, 0);
	int64_t unavail = ctrl_int_or_percent(json_path(ru, "maxUnavailable"), desired, true, 1);
	const cJSON *newp, *oldp;

	if (surge == 0 && unavail == 0)
		unavail = 1;
	if (surge == 0) {
		int64_t nunavail = 0;
		_cleanup_free_ const cJSON **cand = calloc(nn + 1, sizeof(*cand));
		size_t ncand = 0;
		if (!cand) {
			s->failed = -ENOMEM;
			return;
		}
		for (size_t i = 0; i < nn; i++) {
			struct ds_node *n = &nodes[i];
			if (!n->node)
				continue;
			if (!n->npods) {
				/* a node still waiting for its pod is down too */
				if (n->run)
					nunavail++;
				continue;
			}
			if (!node_new_old(n, s->hash, &newp, &oldp) || (!newp && !oldp) ||
			    (newp && oldp)) {
				nunavail++; /* the manage step sorts this node out */
				continue;
			}
			if (newp) {
				if (!sync_available(s, newp))
					nunavail++;
				continue;
			}
			if (!sync_available(s, oldp))
				sync_delete(s, oldp, -1); /* costs no availability */
			else if (nunavail < unavail)
				cand[ncand++] = oldp;
		}
		int64_t budget = unavail - nunavail;
		for (size_t i = 0; i < ncand && budget > 0; i++, budget--)
			sync_delete(s, cand[i], -1);
		return;
	}
	int64_t nsurge = 0;
	_cleanup_free_ const char **cand = calloc(nn + 1, sizeof(*cand));
	size_t ncand = 0;
	if (!cand) {
		s->failed = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < nn; i++) {
		struct ds_node *n = &nodes[i];
		if (!n->npods || !n->node || !node_new_old(n, s->hash, &newp, &oldp) || !oldp)
			continue;
		if (!newp) {
			if (!sync_available(s, oldp))
				sync_create(s, n->name); /* replacing it costs nothing */
			else if (nsurge < surge)
				cand[ncand++] = n->name;
			continue;
		}
		if (!sync_available(s, newp)) {
			nsurge++;
			continue;
		}
		sync_delete(s, oldp, -1);
	}
	for (size_t i = 0; i < ncand && nsurge < surge; i++, nsurge++)
		sync_create(s, cand[i]);
}

struct node_list_ctx {
	cJSON *out;
	int err;
};

static int node_one(struct store_obj *o, void *userdata)
{
	struct node_list_ctx *c = userdata;
	cJSON *j = store_obj_parse(o);

	if (!j) {
		c->err = -ENOMEM;
		return -ENOMEM;
	}
	cJSON_AddItemToArray(c->out, j);
	return 0;
}

static int ds_reconcile(struct ctrl_mgr *m, const char *ns, const char *name, cJSON *ds)
{
	_cleanup_(label_selector_freep) struct label_selector *sel = NULL;
	_cleanup_json_ cJSON *pods = NULL, *revs = NULL, *data = NULL;
	_cleanup_json_ cJSON *nodelist = cJSON_CreateArray();
	struct ds_fit fit = {0};
	struct ds_sync s = {.m = m, .ds = ds, .ns = ns, .name = name};
	struct ds_node *nodes = NULL;
	size_t nn = 0, cap;
	int64_t collisions, desired = 0, current = 0, ready = 0, avail = 0, updated = 0, mis = 0;
	const char *uid, *strategy;
	char hash[16];
	cJSON *pod, *node, *status;
	int r;

	if (!ds || ctrl_terminating(ds))
		return 0; /* dependents are the garbage collector's */
	if (!nodelist)
		return -ENOMEM;
	uid = json_str(ds, "metadata.uid", "");
	s.now_s = (int64_t)(ctrl_now_ms(m) / 1000);
	s.min_ready = json_int(ds, "spec.minReadySeconds", 0);
	strategy = json_str(ds, "spec.updateStrategy.type", "RollingUpdate");
	collisions = json_int(ds, "status.collisionCount", 0);
	r = label_selector_from_json(json_path(ds, "spec.selector"), "spec.selector", &sel, NULL);
	if (r < 0 || label_selector_is_empty(sel))
		return 0; /* validation keeps these out; never select every pod */

	/* the revision of the current template */
	data = ds_revision_data(ds);
	if (!data)
		return -ENOMEM;
	r = ctrl_list(m, "controllerrevisions.apps", ns, sel, uid, &revs);
	if (r < 0)
		return r;
	r = ds_current_revision(m, ds, ns, name, data, revs, hash, sizeof(hash), &collisions);
	if (r == -EAGAIN && collisions != json_int(ds, "status.collisionCount", 0)) {
		status = cJSON_Duplicate(json_path(ds, "status"), 1);
		if (!cJSON_IsObject(status)) {
			cJSON_Delete(status);
			status = cJSON_CreateObject();
		}
		json_set_int(status, "collisionCount", collisions);
		ctrl_status_update(m, ds, status);
	}
	if (r < 0)
		return r;
	s.hash = hash;

	/* nodes and their daemon pods */
	struct node_list_ctx nc = {nodelist, 0};
	r = store_list(ctrl_store(m), "nodes", NULL, NULL, NULL, node_one, &nc);
	if (r < 0 || nc.err < 0)
		return r < 0 ? r : nc.err;
	r = ctrl_list(m, "pods", ns, sel, uid, &pods);
	if (r < 0)
		return r;
	cap = (size_t)cJSON_GetArraySize(nodelist) + (size_t)cJSON_GetArraySize(pods) + 1;
	nodes = calloc(cap, sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	r = ds_fit_init(&fit, ds);
	if (r < 0)
		goto out;
	cJSON_ArrayForEach(node, nodelist)
	{
		struct ds_node *n = &nodes[nn++];
		n->name = json_str(node, "metadata.name", "");
		n->node = node;
		ds_should_run(&fit, node, &n->run, &n->stay);
	}
	cJSON_ArrayForEach(pod, pods)
	{
		bool matches = label_selector_matches(sel, json_path(pod, "metadata.labels"));
		cJSON *ref = ctrl_controller_ref(pod);
		const char *target;
		struct ds_node *n = NULL;

		if (ref && !streq(json_str(ref, "uid", ""), uid))
			continue;
		if (!ref) {
			if (!matches || ctrl_terminating(pod) ||
			    pod_set_owner(m, pod, ds, true) < 0)
				continue;
		} else if (!matches) {
			pod_set_owner(m, pod, ds, false);
			continue;
		}
		/* terminal and already being deleted: nothing left for us to do */
		const char *phase = json_str(pod, "status.phase", "");
		if (ctrl_terminating(pod) && (streq(phase, "Succeeded") || streq(phase, "Failed")))
			continue;
		target = pod_target_node(pod);
		if (!target)
			continue; /* not a daemon pod we know how to place; leave it */
		for (size_t i = 0; i < nn && !n; i++)
			if (streq(nodes[i].name, target))
				n = &nodes[i];
		if (!n) {
			n = &nodes[nn++];
			n->name = target;
		}
		const cJSON **pv = reallocarray(n->pods, n->npods + 1, sizeof(*pv));
		if (!pv) {
			r = -ENOMEM;
			goto out;
		}
		n->pods = pv;
		n->pods[n->npods++] = pod;
	}
	for (size_t i = 0; i < nn; i++)
		if (nodes[i].npods > 1)
			qsort(nodes[i].pods, nodes[i].npods, sizeof(*nodes[i].pods), pod_age_cmp);

	/* status from what exists now (what this pass writes shows up in the next one) */
	for (size_t i = 0; i < nn; i++) {
		struct ds_node *n = &nodes[i];
		if (!n->node)
			continue;
		if (!n->run) {
			if (n->npods)
				mis++;
			continue;
		}
		desired++;
		if (!n->npods)
			continue;
		current++;
		/* the oldest pod that is not on its way out speaks for the node */
		const cJSON *p = NULL;
		for (size_t j = 0; j < n->npods && !p; j++)
			if (!ctrl_terminating(n->pods[j]))
				p = n->pods[j];
		if (!p)
			continue;
		/* a down node's pod is not ready, whatever its node last wrote (Kubernetes' node
		 * lifecycle controller marks it NotReady); the rolling update below still goes by
		 * the pods' own Ready */
		if (ctrl_pod_ready_live(m, p)) {
			ready++;
			if (sync_available(&s, p))
				avail++;
		}
		if (pod_is_new(p, hash))
			updated++;
	}

	bool surge = false;
	if (streq(strategy, "RollingUpdate"))
		surge =
		    ctrl_int_or_percent(json_path(ds, "spec.updateStrategy.rollingUpdate.maxSurge"),
					desired, true, 0) > 0;
	for (size_t i = 0; i < nn; i++)
		sync_manage(&s, &nodes[i], surge);
	/* like Kubernetes' expectations: the update step runs on a state the manage step left
	 * alone, so pods it just created or deleted count in the next pass */
	if (streq(strategy, "RollingUpdate") && !s.writes && !s.failed)
		sync_rolling(&s, nodes, nn, desired);
	ds_prune_history(m, ds, ns, revs, pods);
	if (s.recheck_ms)
		ctrl_enqueue(m, "daemonsets.apps", ns, name, s.recheck_ms);

	status = cJSON_Duplicate(json_path(ds, "status"), 1);
	if (!cJSON_IsObject(status)) {
		cJSON_Delete(status);
		status = cJSON_CreateObject();
	}
	json_set_int(status, "currentNumberScheduled", current);
	json_set_int(status, "numberMisscheduled", mis);
	json_set_int(status, "desiredNumberScheduled", desired);
	json_set_int(status, "numberReady", ready);
	json_set_int(status, "observedGeneration", json_int(ds, "metadata.generation", 1));
	json_set_int(status, "updatedNumberScheduled", updated);
	json_set_int(status, "numberAvailable", avail);
	json_set_int(status, "numberUnavailable", desired - avail);
	if (collisions)
		json_set_int(status, "collisionCount", collisions);
	r = ctrl_status_update(m, ds, status);
	/* a pod that could not be created or deleted fails the reconcile: the manager retries */
	if (s.failed < 0)
		r = s.failed;
out:
	ds_fit_release(&fit);
	for (size_t i = 0; i < nn; i++)
		free(nodes[i].pods);
	free(nodes);
	free(s.deleted);
	return r;
}

/* Every DaemonSet (a Node came, went or changed its labels or taints). */
static int enqueue_one(struct store_obj *o, void *userdata)
{
	ctrl_enqueue(userdata, "daemonsets.apps", o->ns, o->name, 0);
	return 0;
}

void ctrl_daemonset_on_node(struct ctrl_mgr *m, const struct store_event *ev)
{
	/* status-only writes (conditions, addresses) change nothing a DaemonSet looks at */
	if (ev->type == STORE_MODIFIED && ev->old && ev->old->spec_hlc == ev->obj->spec_hlc)
		return;
	store_list(ctrl_store(m), "daemonsets.apps", NULL, NULL, NULL, enqueue_one, m);
}

const struct ctrl_ops ctrl_daemonset_ops = {
    .resource = "daemonsets.apps",
    .kind = "DaemonSet",
    .api_version = "apps/v1",
    .reconcile = ds_reconcile,
};
