// SPDX-License-Identifier: Apache-2.0
/*
 * The server side of one WebSocket connection, shared by the streaming handlers (exec,
 * portforward): the 101 handshake on a connection taken over from evhttp, reading frames
 * (control frames answered here, fragmented messages stitched back into one channel), writing
 * frames and the close handshake. libevent 2.1 has no WebSocket server, so the handler takes
 * the connection's bufferevent from evhttp and owns it from then on; evhttp_connection_free()
 * closes it at the end. Framing itself is lib/ws.c.
 */
#include <string.h>
#include <event2/bufferevent.h>

#include "api/server-internal.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/ws.h"

struct api_ws {
	struct evhttp_connection *evcon; /* NULL once gone */
	struct bufferevent *bev;
	const struct api_ws_ops *ops;
	void *ud;
	bool channels;
	bool close_sent, gone;
	int cur_channel; /* channel of a fragmented message, -1 */
	size_t max_frame;
	char desc[128];
};

const char *api_ws_upgrade_key(struct api_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *key = evhttp_find_header(h, "Sec-WebSocket-Key");

	if (!ws_header_has_token(evhttp_find_header(h, "Upgrade"), "websocket") ||
	    !ws_header_has_token(evhttp_find_header(h, "Connection"), "upgrade") || !key)
		return NULL;
	return key;
}

bool api_ws_spdy_request(struct api_req *r)
{
	const char *upgrade =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Upgrade");

	return upgrade && !strncasecmp(upgrade, "SPDY", 4);
}

/* The connection is over: tell the owner once, who frees w (now or later). */
static void ws_gone(struct api_ws *w)
{
	if (w->gone)
		return;
	w->gone = true;
	if (w->bev)
		bufferevent_disable(w->bev, EV_READ | EV_WRITE);
	w->ops->closed(w->ud);
}

void api_ws_send(struct api_ws *w, enum ws_opcode op, int channel, const void *p, size_t n)
{
	uint8_t h[14], ch = (uint8_t)channel;
	size_t hl;

	if (!w || !w->bev || w->gone || w->close_sent)
		return;
	hl = ws_frame_header(op, true, n + (channel >= 0), NULL, h);
	bufferevent_write(w->bev, h, hl);
	if (channel >= 0)
		bufferevent_write(w->bev, &ch, 1);
	if (n)
		bufferevent_write(w->bev, p, n);
}

void api_ws_close(struct api_ws *w, uint16_t code)
{
	uint8_t b[2] = {code >> 8, code & 0xff};

	if (!w || w->close_sent)
		return;
	api_ws_send(w, WS_OP_CLOSE, -1, b, 2);
	w->close_sent = true;
	/* no more input matters; closed() comes from write_cb once the frame is out, never from
	 * here (the caller may be in the middle of its own state changes) */
	if (w->bev && !w->gone)
		bufferevent_disable(w->bev, EV_READ);
}

size_t api_ws_backlog(const struct api_ws *w)
{
	return w && w->bev && !w->gone ? evbuffer_get_length(bufferevent_get_output(w->bev)) : 0;
}

void api_ws_read_enable(struct api_ws *w, bool on)
{
	if (!w || !w->bev || w->gone || w->close_sent)
		return;
	if (on)
		bufferevent_enable(w->bev, EV_READ);
	else
		bufferevent_disable(w->bev, EV_READ);
}

static void data(struct api_ws *w, enum ws_opcode op, bool fin, uint8_t *p, size_t n)
{
	if (!w->channels) {
		if (n)
			w->ops->data(w->ud, -1, p, n);
		return;
	}
	if (op != WS_OP_CONT) {
		if (!n)
			return;
		w->cur_channel = fin ? -1 : p[0];
		w->ops->data(w->ud, p[0], p + 1, n - 1);
		return;
	}
	if (w->cur_channel >= 0 && n)
		w->ops->data(w->ud, w->cur_channel, p, n);
	if (fin)
		w->cur_channel = -1;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct api_ws *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!w->gone && !w->close_sent) {
		size_t len = evbuffer_get_length(in);
		struct ws_frame f;
		uint8_t *p, *pl;
		int r;

		if (len < 2)
			return;
		p = evbuffer_pullup(in, -1);
		r = ws_frame_parse(p, len, w->max_frame, &f);
		if (r == 0)
			return;
		if (r < 0 || !f.masked) {
			log_warn("api: %s: bad WebSocket frame from the client", w->desc);
			api_ws_close(w, r == -EMSGSIZE ? 1009 : 1002);
			return;
		}
		pl = p + f.header_len;
		ws_unmask(pl, f.payload_len, f.mask, 0);
		switch (f.op) {
		case WS_OP_CLOSE:
			/* echo the code, then the connection is over once it is out */
			if (f.payload_len >= 2) {
				uint16_t code = (uint16_t)(pl[0] << 8 | pl[1]);
				evbuffer_drain(in, f.header_len + f.payload_len);
				api_ws_close(w, code);
			} else {
				evbuffer_drain(in, f.header_len + f.payload_len);
				api_ws_close(w, 1000);
			}
			return;
		case WS_OP_PING:
			api_ws_send(w, WS_OP_PONG, -1, pl, f.payload_len);
			break;
		case WS_OP_PONG:
			break;
		case WS_OP_TEXT:
		case WS_OP_BINARY:
		case WS_OP_CONT:
			data(w, f.op, f.fin, pl, f.payload_len);
			break;
		}
		/* a callback may have closed or finished the connection: in stays valid (the
		 * bufferevent lives until the owner frees w, which it does not do from data()) */
		evbuffer_drain(in, f.header_len + f.payload_len);
	}
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct api_ws *w = arg;

	if (w->gone)
		return;
	if (w->close_sent) {
		ws_gone(w);
		return;
	}
	if (w->ops->drained)
		w->ops->drained(w->ud);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct api_ws *w = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		log_debug("api: %s: client closed the connection", w->desc);
		ws_gone(w);
	}
}

static void on_evcon_close(struct evhttp_connection *evcon, void *arg)
{
	struct api_ws *w = arg;

	/* evhttp is freeing the connection (server shutdown) */
	w->evcon = NULL;
	w->bev = NULL;
	ws_gone(w);
}

int api_ws_accept(struct api_req *r, const char *key, const char *protocol, bool channels,
		  const struct api_ws_ops *ops, void *ud, const char *desc, struct api_ws **ret)
{
	struct api_ws *w;
	char accept[29];

	if (ws_accept_key(key, accept) < 0) {
		api_reply_status(r, 400, "BadRequest", NULL, NULL, "invalid Sec-WebSocket-Key");
		return -EINVAL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		api_reply_status(r, 500, "InternalError", NULL, NULL, "out of memory");
		return -ENOMEM;
	}
	w->ops = ops;
	w->ud = ud;
	w->channels = channels;
	w->cur_channel = -1;
	w->max_frame = API_WS_MAX_FRAME;
	snprintf(w->desc, sizeof(w->desc), "%s", desc);
	w->evcon = evhttp_request_get_connection(r->req);
	w->bev = evhttp_connection_get_bufferevent(w->evcon);
	evhttp_connection_set_closecb(w->evcon, on_evcon_close, w);
	bufferevent_setcb(w->bev, read_cb, write_cb, event_cb, w);
	bufferevent_set_timeouts(w->bev, NULL, NULL);
	bufferevent_enable(w->bev, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(w->bev),
			    "HTTP/1.1 101 Switching Protocols\r\n"
			    "Upgrade: websocket\r\n"
			    "Connection: Upgrade\r\n"
			    "Sec-WebSocket-Accept: %s\r\n"
			    "%s%s%s\r\n",
			    accept, protocol ? "Sec-WebSocket-Protocol: " : "", protocol ?: "",
			    protocol ? "\r\n" : "");
	r->code = 101;
	*ret = w;
	return 0;
}

void api_ws_start(struct api_ws *w)
{
	/* frames the client sent right behind its request */
	if (w && w->bev && !w->gone && evbuffer_get_length(bufferevent_get_input(w->bev)))
		read_cb(w->bev, w);
}

struct api_ws *api_ws_free(struct api_ws *w)
{
	if (!w)
		return NULL;
	if (w->evcon) {
		evhttp_connection_set_closecb(w->evcon, NULL, NULL);
		evhttp_connection_free(w->evcon);
	}
	free(w);
	return NULL;
}
