package httpd

import (
	"bufio"
	"strings"
	"testing"
)

func TestAccess(t *testing.T) {
	forEngines(t, func(t *testing.T, engine string) {
		s := start(t, engine, Config{Handler: Protect(testHandler(), Access{Token: "s3cret", Hosts: []string{"rescue.lan"}, Open: []string{"/healthz"}})})
		c := dial(t, s)
		br := bufio.NewReader(c)
		for _, tc := range []struct {
			req  string
			code int
		}{
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5\r\nAuthorization: Bearer s3cret\r\n\r\n", 200},
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5:8080\r\nAuthorization: bearer  s3cret \r\n\r\n", 200},
			{"GET /hello?a=1&token=s3cret HTTP/1.1\r\nHost: [fe80::1]:80\r\n\r\n", 200},
			{"GET /hello HTTP/1.1\r\nHost: Rescue.LAN.\r\nAuthorization: Bearer s3cret\r\n\r\n", 200},
			{"GET /hello HTTP/1.1\r\nHost: localhost:80\r\nAuthorization: Bearer s3cret\r\n\r\n", 200},
			{"GET /hello HTTP/1.0\r\nAuthorization: Bearer s3cret\r\nConnection: keep-alive\r\n\r\n", 200},
			// DNS rebinding: the attacker's name, even with the token.
			{"GET /hello HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer s3cret\r\n\r\n", 421},
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5.evil.example\r\nAuthorization: Bearer s3cret\r\n\r\n", 421},
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5:80x\r\nAuthorization: Bearer s3cret\r\n\r\n", 421},
			{"GET /hello HTTP/1.1\r\nHost: [::1\r\nAuthorization: Bearer s3cret\r\n\r\n", 421},
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5\r\n\r\n", 401},
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5\r\nAuthorization: Bearer s3cre\r\n\r\n", 401},
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5\r\nAuthorization: Bearer s3cretX\r\n\r\n", 401},
			{"GET /hello?token=S3CRET HTTP/1.1\r\nHost: 10.0.0.5\r\n\r\n", 401},
			{"GET /hello HTTP/1.1\r\nHost: 10.0.0.5\r\nAuthorization: Basic czNjcmV0\r\n\r\n", 401},
			{"GET /healthz HTTP/1.1\r\nHost: 10.0.0.5\r\n\r\n", 404}, // open: reaches the handler
		} {
			resp, body := roundTrip(t, c, br, tc.req)
			if resp.StatusCode != tc.code {
				t.Errorf("%q: %d %q, want %d", tc.req, resp.StatusCode, body, tc.code)
			}
			if tc.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", resp.Header)
			}
		}
	})
}

func TestTokenEqual(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		ok        bool
	}{
		{"abc", "abc", true}, {"abd", "abc", false}, {"ab", "abc", false}, {"abcd", "abc", false},
		{"", "abc", false}, {"", "", false}, {"abc\x00", "abc", false},
	} {
		if TokenEqual([]byte(tc.got), []byte(tc.want)) != tc.ok {
			t.Errorf("TokenEqual(%q, %q) != %v", tc.got, tc.want, tc.ok)
		}
	}
}
