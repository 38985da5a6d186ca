package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestServesDiagAndHello(t *testing.T) {
	pr, pw := io.Pipe()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- run([]string{"-listen", "127.0.0.1:0", "-workers", "2"}, pw, stop) }()
	line := make([]byte, 256)
	n, _ := pr.Read(line)
	m := regexp.MustCompile(`http://([0-9.:]+)/`).FindSubmatch(line[:n])
	if m == nil {
		t.Fatalf("no address in %q", line[:n])
	}
	go io.Copy(io.Discard, pr)
	base := "http://" + string(m[1])
	resp, err := http.Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "Hello, world\n" || len(b) != 13 {
		t.Fatalf("/hello %q", b)
	}
	resp, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "romboot diagnostics") || !strings.Contains(string(b), "Block devices") {
		t.Fatalf("/ %d %.200s", resp.StatusCode, b)
	}
	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("httpd did not stop")
	}
}
