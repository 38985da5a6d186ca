// Package httpd is romboot's small HTTP/1.1 server, built on raw system
// calls (golang.org/x/sys/unix) instead of net and net/http, to stay small in
// ROM. The HTTP layer (request parser, responses) is shared by the engines;
// the `pool` engine is one acceptor thread, a bounded ring of connections and
// N worker threads sleeping on a futex, with an epoll poller that parks idle
// keep-alive connections so a worker never waits on a quiet client.
package httpd
