package httpd

import (
	"bytes"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	var r Request
	in := "GET /diag.json?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n"
	if err := Parse([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Method != MethodGET || string(r.Path) != "/diag.json" || string(r.Target) != "/diag.json?x=1" || r.KeepAlive || r.Minor != 1 || string(r.Host) != "a" {
		t.Fatalf("%+v", r)
	}
	if r.size != strings.Index(in, "GET / ") {
		t.Fatalf("size %d", r.size)
	}
	for _, tc := range []struct {
		in        string
		code      int // 0: ok, -1: incomplete
		keepAlive bool
	}{
		{"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 0, true},
		{"GET / HTTP/1.0\r\n\r\n", 0, false},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, true},
		{"GET / HTTP/1.1\nHost: x\n\n", 0, true},
		{"GET / HTTP/1.1\r\nHost: x\r\n", -1, false},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab", -1, false},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde", 0, true},
		{"GET / HTTP/1.1\r\n\r\n", 400, false},                          // no Host
		{"GET  HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},                // no target
		{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, false},               // wrong major
		{"GET / HTTQ/1.1\r\nHost: x\r\n\r\n", 400, false},               // bad proto
		{"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, false},           // unknown method
		{"\x00\x01\x02 garbage\r\n\r\n", 400, false},                    // garbage
		{"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, false}, // no colon
		{"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501, false},
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", 413, false},
		{"GET /" + strings.Repeat("a", MaxURIBytes) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, false},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", MaxHeaderBytes) + "\r\n\r\n", 431, false},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", MaxHeaderBytes), 431, false},
	} {
		err := Parse([]byte(tc.in), &r)
		got := 0
		switch {
		case err == errIncomplete:
			got = -1
		case err != nil:
			got = err.(*StatusError).Code
		}
		if got != tc.code || (got == 0 && r.KeepAlive != tc.keepAlive) {
			t.Errorf("%.60q: got %d (keep-alive %v), want %d (%v)", tc.in, got, r.KeepAlive, tc.code, tc.keepAlive)
		}
	}
}

func TestMethodTable(t *testing.T) {
	for m := MethodGET; m <= MethodCONNECT; m++ {
		got, n := parseMethod([]byte(m.String() + " /x HTTP/1.1"))
		if got != m || n != len(m.String())+1 {
			t.Errorf("%s: got %s %d", m, got, n)
		}
	}
	for _, s := range []string{"GETS / ", "GE", "get / ", "POS", ""} {
		if m, _ := parseMethod([]byte(s)); m != MethodUnknown {
			t.Errorf("%q parsed as %s", s, m)
		}
	}
}

func TestParseNoAlloc(t *testing.T) {
	in := []byte("GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\nConnection: keep-alive\r\n\r\n")
	var r Request
	if n := testing.AllocsPerRun(100, func() { Parse(in, &r) }); n != 0 {
		t.Fatalf("Parse allocates %v times per request", n)
	}
}

// TestServeNoAlloc: answering requests (parse, handler, response, an
// error status too) allocates nothing once the scratch buffers have grown,
// and leaves no reference into the input behind.
func TestServeNoAlloc(t *testing.T) {
	in := []byte("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\nGET /nope HTTP/1.1\r\nHost: localhost\r\n\r\nPOST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
	h := HandlerFunc(func(req *Request, resp *Response) {
		if string(req.Path) != "/hello" {
			resp.Status = 404
		}
		resp.Body = append(resp.Body, hello...)
	})
	var req Request
	var resp Response
	out := make([]byte, 0, 4096)
	date := []byte("Sun, 06 Dec 2026 10:00:00 GMT")
	n := testing.AllocsPerRun(100, func() {
		consumed, o, _, _ := serveBuffered(h, in, out[:0], &req, &resp, date, 32, 1<<16)
		if consumed != len(in) || !bytes.Contains(o, []byte("404 Not Found")) || !bytes.Contains(o, []byte("405 Method Not Allowed")) {
			t.Fatalf("consumed %d of %d: %q", consumed, len(in), o)
		}
	})
	if n != 0 {
		t.Fatalf("serveBuffered allocates %v times per call", n)
	}
	if req.Path != nil || req.Host != nil {
		t.Fatalf("the request still points into the input: %+v", req)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /a?b HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabcGET / HTTP/1.1\r\nHost: y\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if err := Parse(b, &r); err == nil && (r.size <= 0 || r.size > len(b)) {
			t.Fatalf("size %d of %d", r.size, len(b))
		}
		var resp Response
		consumed, out, _, _ := serveBuffered(HandlerFunc(func(*Request, *Response) {}), b, nil, &r, &resp, []byte("date"), 1<<30, 1<<30)
		if consumed > len(b) || (consumed < len(b) && len(out) == 0 && consumed != 0) {
			t.Fatalf("consumed %d of %d", consumed, len(b))
		}
	})
}
