//go:build initrd_xz

package initrd

import (
	"bytes"
	"io"

	"github.com/ulikunitz/xz"
)

// xzBuilt: this build reads xz members (build tag initrd_xz).
const xzBuilt = true

// decodeXZ unpacks one xz stream. The decoder reads its input exactly (it
// takes an io.ByteReader as is); in single-stream mode it then reads one
// more byte to check that the input ends there. Data after the stream (the
// next member) is the end of this member, not an error.
func decodeXZ(in []byte, fn func(io.Reader) error) (int, error) {
	br := bytes.NewReader(in)
	z, err := xz.ReaderConfig{SingleStream: true, DictCap: 64 << 20}.NewReader(br)
	if err != nil {
		return 0, err
	}
	e := &xzEnd{r: z, br: br, end: -1}
	if err := fn(e); err != nil {
		return 0, err
	}
	if e.end >= 0 {
		return e.end, nil
	}
	return len(in) - br.Len(), nil
}

type xzEnd struct {
	r   io.Reader
	br  *bytes.Reader
	end int
}

func (e *xzEnd) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	// The single-stream reader's "unexpected data after stream": it has
	// read one byte past the stream's end.
	if err != nil && err != io.EOF && err.Error() == "xz: unexpected data after stream" {
		e.end = int(e.br.Size()) - e.br.Len() - 1
		return n, io.EOF
	}
	return n, err
}
