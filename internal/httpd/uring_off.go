//go:build nouring

package httpd

import "errors"

// Built with the nouring tag (the X220 ROM): the io_uring engine is left
// out and a request for it falls back to the pool engine (see New).
func listenUring(Config) (Engine, error) {
	return nil, errors.New("not built into this payload")
}
