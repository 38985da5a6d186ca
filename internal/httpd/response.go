package httpd

import (
	"strconv"
	"sync/atomic"
	"time"
)

// statusText is the one table of the statuses this server sends (a switch:
// a map lookup on every response showed in the profile).
func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 421:
		return "Misdirected Request"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}

// Response is what a handler fills in. Body is reused between requests on
// a connection: append to it.
type Response struct {
	Status      int
	ContentType string
	Header      []byte // more header lines, each ending in "\r\n"
	Body        []byte
}

// Reset prepares the response for the next request.
func (r *Response) Reset() {
	r.Status, r.ContentType, r.Header, r.Body = 200, "text/plain; charset=utf-8", r.Header[:0], r.Body[:0]
}

// Handler serves one request. It must not keep req or resp.
type Handler interface {
	ServeHTTP(req *Request, resp *Response)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(req *Request, resp *Response)

// ServeHTTP calls f.
func (f HandlerFunc) ServeHTTP(req *Request, resp *Response) { f(req, resp) }

// dateCache formats the Date header at most once per second.
type dateCache struct {
	v atomic.Pointer[dateValue]
}

type dateValue struct {
	sec  int64
	text []byte
}

func (d *dateCache) get(now time.Time) []byte {
	sec := now.Unix()
	if v := d.v.Load(); v != nil && v.sec == sec {
		return v.text
	}
	v := &dateValue{sec: sec, text: now.UTC().AppendFormat(nil, "Mon, 02 Jan 2006 15:04:05 GMT")}
	d.v.Store(v)
	return v.text
}

// appendResponse writes the status line, headers and (unless HEAD) the body
// into dst: one buffer, so a small response leaves in one send.
func appendResponse(dst []byte, head bool, resp *Response, keepAlive bool, date []byte) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(resp.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(resp.Status)...)
	dst = append(dst, "\r\nServer: romboot\r\nDate: "...)
	dst = append(dst, date...)
	dst = append(dst, "\r\nContent-Type: "...)
	dst = append(dst, resp.ContentType...)
	dst = append(dst, "\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(resp.Body)), 10)
	if len(resp.Header) > 0 {
		dst = append(dst, "\r\n"...)
		dst = append(dst, resp.Header[:len(resp.Header)-2]...)
	}
	if keepAlive {
		dst = append(dst, "\r\nConnection: keep-alive\r\n\r\n"...)
	} else {
		dst = append(dst, "\r\nConnection: close\r\n\r\n"...)
	}
	if !head {
		dst = append(dst, resp.Body...)
	}
	return dst
}

// errorResponse fills resp for a status error.
func errorResponse(resp *Response, code int) {
	resp.Reset()
	resp.Status = code
	resp.Body = strconv.AppendInt(resp.Body, int64(code), 10)
	resp.Body = append(resp.Body, ' ')
	resp.Body = append(resp.Body, statusText(code)...)
	resp.Body = append(resp.Body, '\n')
}

// serveBuffered answers the complete requests at the start of in (HTTP
// pipelining: several in one read, answered in order) into out, at most
// maxReqs of them and none more once out holds maxOut bytes. It returns how
// many input bytes it consumed, the output, whether to close after sending,
// and whether a partial request remains (false when it stopped at a limit
// with complete requests left: consumed < len(in)).
func serveBuffered(h Handler, in []byte, out []byte, req *Request, resp *Response, date []byte, maxReqs, maxOut int) (consumed int, o []byte, closeAfter bool, partial bool) {
	defer func() { *req = Request{} }() // it points into in
	for n := 0; consumed < len(in) && n < maxReqs && len(out) < maxOut; n++ {
		err := Parse(in[consumed:], req)
		if err == errIncomplete {
			return consumed, out, false, true
		}
		if err != nil {
			code := 400
			if se, ok := err.(*StatusError); ok {
				code = se.Code
			}
			errorResponse(resp, code)
			return len(in), appendResponse(out, false, resp, false, date), true, false
		}
		consumed += req.size
		resp.Reset()
		switch req.Method {
		case MethodGET, MethodHEAD:
			safeServe(h, req, resp)
		default:
			errorResponse(resp, 405)
		}
		out = appendResponse(out, req.Method == MethodHEAD, resp, req.KeepAlive, date)
		if !req.KeepAlive {
			return consumed, out, true, false
		}
	}
	return consumed, out, false, false
}

// safeServe runs the handler; a panic becomes a 500 instead of killing the
// worker.
func safeServe(h Handler, req *Request, resp *Response) {
	defer func() {
		if r := recover(); r != nil {
			errorResponse(resp, 500)
		}
	}()
	h.ServeHTTP(req, resp)
}
