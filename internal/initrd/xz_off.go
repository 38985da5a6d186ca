//go:build !initrd_xz

package initrd

import (
	"fmt"
	"io"
)

// xzBuilt: this build reads xz members (build tag initrd_xz). It is off by
// default: the decoder costs about 47 KB of xz-compressed ROM, and today's
// distributions compress their initrds with zstd or gzip.
const xzBuilt = false

func decodeXZ([]byte, func(io.Reader) error) (int, error) {
	return 0, fmt.Errorf("xz: %w (build with -tags initrd_xz)", ErrNotBuilt)
}
