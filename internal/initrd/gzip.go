package initrd

import (
	"bytes"
	"compress/gzip"
	"io"
)

// decodeGzip unpacks one gzip member. Over a bytes.Reader (an
// io.ByteReader) the decompressor reads no further than the member's end,
// so what follows it is the next member.
func decodeGzip(in []byte, fn func(io.Reader) error) (int, error) {
	br := bytes.NewReader(in)
	z, err := gzip.NewReader(br)
	if err != nil {
		return 0, err
	}
	z.Multistream(false)
	if err := fn(z); err != nil {
		return 0, err
	}
	return len(in) - br.Len(), nil
}
