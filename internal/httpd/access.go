package httpd

import (
	"bytes"
	"net/netip"
	"strings"
)

// Access says whom a server answers. The zero value answers everyone.
type Access struct {
	// Token, when set, must come with every request (except the Open
	// paths): "Authorization: Bearer <token>" or "?token=<token>" in the
	// URL. It is compared in constant time.
	Token string
	// Hosts are the names accepted in the Host header besides IP
	// literals and "localhost": a page reached under any other name is
	// refused (421), which defeats DNS rebinding, where a web page makes
	// the browser send its own requests to this server under the
	// attacker's name.
	Hosts []string
	// Open paths are served without the token (/healthz).
	Open []string
}

// Protect returns h behind the access checks: a wrong Host gets 421, a
// missing or wrong token 401.
func Protect(h Handler, a Access) Handler {
	token := []byte(a.Token)
	return HandlerFunc(func(req *Request, resp *Response) {
		if req.Host != nil && !a.hostOK(req.Host) {
			errorResponse(resp, 421)
			resp.Body = append(resp.Body, "this server answers to its IP addresses and the names given with romboot.diag_hosts=\n"...)
			return
		}
		if len(token) > 0 && !a.open(req.Path) && !TokenEqual(RequestToken(req), token) {
			errorResponse(resp, 401)
			resp.Header = append(resp.Header, "WWW-Authenticate: Bearer realm=\"romboot\"\r\n"...)
			resp.Body = append(resp.Body, "a token is required: curl -H 'Authorization: Bearer TOKEN' or ?token=TOKEN\n"...)
			return
		}
		h.ServeHTTP(req, resp)
	})
}

func (a *Access) open(path []byte) bool {
	for _, p := range a.Open {
		if string(path) == p {
			return true
		}
	}
	return false
}

// hostOK accepts an IP literal (v4, or v6 in brackets), localhost or a
// configured name, with an optional port.
func (a *Access) hostOK(host []byte) bool {
	h := string(host)
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || (end+1 < len(h) && !isPort(h[end+1:])) {
			return false
		}
		ip, err := netip.ParseAddr(h[1:end])
		return err == nil && ip.Is6()
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !isPort(h[i:]) {
			return false
		}
		h = h[:i]
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Is4() {
		return true
	}
	h = strings.TrimSuffix(h, ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	for _, n := range a.Hosts {
		if n != "" && strings.EqualFold(h, strings.TrimSuffix(n, ".")) {
			return true
		}
	}
	return false
}

// isPort matches ":" followed by 1 to 5 digits.
func isPort(s string) bool {
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// RequestToken returns the token a request carries: the Bearer credential,
// else the token= query parameter; nil when none.
func RequestToken(req *Request) []byte {
	if v := req.Authorization; len(v) > 7 && equalFold(v[:7], "bearer ") {
		return bytes.TrimSpace(v[7:])
	}
	if q := bytes.IndexByte(req.Target, '?'); q >= 0 {
		for _, kv := range bytes.Split(req.Target[q+1:], []byte("&")) {
			if v, ok := bytes.CutPrefix(kv, []byte("token=")); ok {
				return v
			}
		}
	}
	return nil
}

// TokenEqual compares in time that depends only on the length of want (the
// secret), not on where got differs from it.
func TokenEqual(got, want []byte) bool {
	var diff byte
	for i := range want {
		var g byte
		if i < len(got) {
			g = got[i]
		}
		diff |= g ^ want[i]
	}
	return diff == 0 && len(got) == len(want) && len(want) > 0
}
