package httpd

import (
	"bytes"
	"errors"
)

// Limits on what a client may send.
const (
	MaxHeaderBytes = 8 << 10 // request line + headers; beyond: 431
	MaxURIBytes    = 2 << 10 // beyond: 414
	MaxBodyBytes   = 64 << 10
)

// Method is a request method, recognised by a fixed-width compare.
type Method uint8

// Methods the parser knows. Only GET and HEAD are served; the others get 405.
const (
	MethodUnknown Method = iota
	MethodGET
	MethodHEAD
	MethodPOST
	MethodPUT
	MethodDELETE
	MethodOPTIONS
	MethodPATCH
	MethodTRACE
	MethodCONNECT
)

var methodNames = [...]string{"", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"}

func (m Method) String() string { return methodNames[m] }

// methodTable maps the first 8 bytes of a request line (method plus the
// space, zero-padded) read as one little-endian word to the method: one
// compare per candidate, no allocation.
var methodTable = func() [len(methodNames)]uint64 {
	var t [len(methodNames)]uint64
	for i, n := range methodNames {
		if n != "" {
			t[i] = word8([]byte(n + " "))
		}
	}
	return t
}()

func word8(b []byte) uint64 {
	var w uint64
	for i := 0; i < 8 && i < len(b); i++ {
		w |= uint64(b[i]) << (8 * i)
	}
	return w
}

// maskFor returns the mask of the first n bytes of a word.
func maskFor(n int) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return (uint64(1) << (8 * n)) - 1
}

func parseMethod(line []byte) (Method, int) {
	w := word8(line)
	for m := MethodGET; m <= MethodCONNECT; m++ {
		n := len(methodNames[m]) + 1
		if len(line) >= n && w&maskFor(n) == methodTable[m] {
			return m, n
		}
	}
	return MethodUnknown, 0
}

// Request is a parsed request; its byte slices point into the connection's
// buffer and are valid until the next request is parsed.
type Request struct {
	Method    Method
	Target    []byte // as sent, e.g. /diag.json?x=1
	Path      []byte // Target without the query
	Major     int
	Minor     int
	KeepAlive bool  // after Connection and the version's default
	BodyLen   int64 // Content-Length
	Host      []byte
	// Authorization is the Authorization header's value, nil when absent.
	Authorization []byte
	size          int // bytes of request line + headers (+ body) consumed
}

// Parse errors, each answered with its status.
var (
	errIncomplete = errors.New("incomplete request")
	errBadRequest = &StatusError{400, "malformed request"}
	errTooLarge   = &StatusError{431, "request header fields too large"}
	errURITooLong = &StatusError{414, "URI too long"}
	errNotImpl    = &StatusError{501, "not implemented"}
	errBodyLarge  = &StatusError{413, "content too large"}
	errVersion    = &StatusError{505, "HTTP version not supported"}
)

// StatusError is a request error with the status to answer.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string { return e.Reason }

// Parse parses one request from the start of b. It returns errIncomplete
// when b holds only part of one (read more and call again).
func Parse(b []byte, r *Request) error {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	sep := 4
	if lf := bytes.Index(b, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
		end, sep = lf, 2
	}
	if end < 0 {
		if len(b) >= MaxHeaderBytes {
			if i := bytes.IndexByte(b, '\n'); i < 0 && len(b) > MaxURIBytes+16 {
				return errURITooLong
			}
			return errTooLarge
		}
		return errIncomplete
	}
	if end+sep > MaxHeaderBytes {
		return errTooLarge
	}
	head := b[:end]
	*r = Request{}
	nl := bytes.IndexByte(head, '\n')
	line := head
	rest := []byte(nil)
	if nl >= 0 {
		line, rest = head[:nl], head[nl+1:]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if err := parseRequestLine(line, r); err != nil {
		return err
	}
	if err := parseHeaders(rest, r); err != nil {
		return err
	}
	r.size = end + sep
	if r.BodyLen > 0 {
		if r.BodyLen > MaxBodyBytes {
			return errBodyLarge
		}
		if int64(len(b)-r.size) < r.BodyLen {
			return errIncomplete
		}
		r.size += int(r.BodyLen)
	}
	return nil
}

func parseRequestLine(line []byte, r *Request) error {
	m, n := parseMethod(line)
	if m == MethodUnknown {
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 || !isToken(line[:sp]) {
			return errBadRequest
		}
		return errNotImpl
	}
	r.Method = m
	line = line[n:]
	sp := bytes.LastIndexByte(line, ' ')
	if sp <= 0 {
		return errBadRequest
	}
	target, proto := line[:sp], line[sp+1:]
	if len(target) > MaxURIBytes {
		return errURITooLong
	}
	if bytes.IndexByte(target, ' ') >= 0 || (target[0] != '/' && !(m == MethodOPTIONS && len(target) == 1 && target[0] == '*')) {
		return errBadRequest
	}
	if len(proto) != 8 || !bytes.HasPrefix(proto, []byte("HTTP/")) || proto[6] != '.' || !isDigit(proto[5]) || !isDigit(proto[7]) {
		return errBadRequest
	}
	r.Major, r.Minor = int(proto[5]-'0'), int(proto[7]-'0')
	if r.Major != 1 {
		return errVersion
	}
	r.Target = target
	r.Path = target
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		r.Path = target[:q]
	}
	r.KeepAlive = r.Minor >= 1
	return nil
}

func parseHeaders(b []byte, r *Request) error {
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errBadRequest // obsolete line folding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return errBadRequest
		}
		name, val := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case equalFold(name, "connection"):
			for rest := val; len(rest) > 0; {
				tok := rest
				if i := bytes.IndexByte(rest, ','); i >= 0 {
					tok, rest = rest[:i], rest[i+1:]
				} else {
					rest = nil
				}
				tok = bytes.TrimSpace(tok)
				if equalFold(tok, "close") {
					r.KeepAlive = false
				} else if equalFold(tok, "keep-alive") {
					r.KeepAlive = true
				}
			}
		case equalFold(name, "content-length"):
			n, ok := parseUint(val)
			if !ok || (r.BodyLen != 0 && r.BodyLen != n) {
				return errBadRequest
			}
			r.BodyLen = n
		case equalFold(name, "transfer-encoding"):
			return errNotImpl
		case equalFold(name, "host"):
			if r.Host != nil {
				return errBadRequest // two Host headers (RFC 9112 3.2)
			}
			r.Host = val
		case equalFold(name, "authorization"):
			r.Authorization = val
		}
	}
	if r.Minor >= 1 && r.Host == nil {
		return errBadRequest // HTTP/1.1 requires Host
	}
	return nil
}

func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte("()<>@,;:\\\"/[]?={}"), c) >= 0 {
			return false
		}
	}
	return len(b) > 0
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
