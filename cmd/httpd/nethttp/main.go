// Command nethttp is the reference for `make bench-httpd`: Go's net/http
// serving the same 13-byte /hello body as romboot's engines.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address:port")
	flag.Parse()
	body := []byte("Hello, world\n")
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
