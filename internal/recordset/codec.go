package recordset

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compressors are expensive to create. LZ4 compressors (a hash table each)
// are pooled; one zstd encoder and one zstd decoder are shared, as their
// EncodeAll/DecodeAll are safe for concurrent use.
var (
	lz4Compressors = sync.Pool{New: func() any { return new(lz4.Compressor) }}

	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			// The ledger protects every entry with a CRC32C already.
			zstd.WithEncoderCRC(false),
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(fmt.Sprintf("recordset: zstd encoder: %v", err))
		}
		return enc
	})

	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxBodyBytes),
			zstd.WithDecoderMaxWindow(MaxBodyBytes),
			// DecodeAll never writes past cap(dst): the declared size.
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			panic(fmt.Sprintf("recordset: zstd decoder: %v", err))
		}
		return dec
	})
)

// appendLZ4 appends body as one LZ4 block if that is smaller; otherwise it
// returns dst unchanged (in length) and CodecNone.
func appendLZ4(dst, body []byte) ([]byte, Codec) {
	start := len(dst)
	dst = grow(dst, len(body)-1) // only a smaller result is worth storing
	c := lz4Compressors.Get().(*lz4.Compressor)
	n, err := c.CompressBlock(body, dst[start:start+len(body)-1])
	lz4Compressors.Put(c)
	if err != nil || n == 0 {
		return dst[:start], CodecNone
	}
	return dst[:start+n], CodecLZ4
}

func appendZstd(dst, body []byte) ([]byte, Codec) {
	start := len(dst)
	dst = zstdEncoder().EncodeAll(body, dst)
	if len(dst)-start >= len(body) {
		return dst[:start], CodecNone
	}
	return dst, CodecZstd
}

// grow extends dst by n bytes of unspecified content.
func grow(dst []byte, n int) []byte {
	if n < 0 {
		n = 0
	}
	if cap(dst)-len(dst) < n {
		bigger := make([]byte, len(dst), len(dst)+n)
		copy(bigger, dst)
		dst = bigger
	}
	return dst[:len(dst)+n]
}

// Largest output per stored byte each format can produce: an LZ4 match
// length grows by 255 per extension byte; a zstd RLE block turns 4 bytes
// (header and value) into up to 128 KiB. Declared sizes beyond these are
// lies, rejected before anything is allocated.
const (
	lz4MaxRatio  = 255
	zstdMaxRatio = (128 << 10) / 4
)

func decompressLZ4(src []byte, size int) ([]byte, error) {
	buf := make([]byte, size)
	n, err := lz4.UncompressBlock(src, buf)
	if err != nil {
		return nil, fmt.Errorf("%w: lz4: %v", ErrCorrupt, err)
	}
	if n != size {
		return nil, fmt.Errorf("%w: lz4 body is %d bytes, header says %d", ErrCorrupt, n, size)
	}
	return buf, nil
}

func decompressZstd(src []byte, size int) ([]byte, error) {
	if err := checkZstdFrame(src, size); err != nil {
		return nil, err
	}
	out, err := zstdDecoder().DecodeAll(src, make([]byte, 0, size))
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(out) != size {
		return nil, fmt.Errorf("%w: zstd body is %d bytes, header says %d", ErrCorrupt, len(out), size)
	}
	return out, nil
}

// checkZstdFrame walks the frame's structure without decoding it: exactly
// one frame, no dictionary, a content size (when present: the encoder
// omits it for tiny bodies) equal to the declared size, and nothing after
// it. Either way the decoder cannot write past the declared size. Skippable frames and trailing frames would otherwise
// let many byte strings encode the same set, or smuggle data past limits.
func checkZstdFrame(src []byte, size int) error {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return fmt.Errorf("%w: zstd frame header: %v", ErrCorrupt, err)
	}
	switch {
	case h.Skippable:
		return fmt.Errorf("%w: zstd skippable frame", ErrCorrupt)
	case h.DictionaryID != 0:
		return fmt.Errorf("%w: zstd frame needs dictionary %d", ErrCorrupt, h.DictionaryID)
	case h.HasFCS && h.FrameContentSize != uint64(size):
		return fmt.Errorf("%w: zstd frame content size %d, header says %d", ErrCorrupt, h.FrameContentSize, size)
	}
	pos := h.HeaderSize
	for {
		if len(src)-pos < 3 {
			return fmt.Errorf("%w: zstd frame truncated at block header (offset %d)", ErrCorrupt, pos)
		}
		bh := int(src[pos]) | int(src[pos+1])<<8 | int(src[pos+2])<<16
		pos += 3
		last, kind, n := bh&1 != 0, (bh>>1)&3, bh>>3
		if n > 128<<10 {
			return fmt.Errorf("%w: zstd block of %d bytes", ErrCorrupt, n)
		}
		switch kind {
		case 0, 2: // raw, compressed: n bytes follow
		case 1: // RLE: one byte, repeated n times
			n = 1
		default:
			return fmt.Errorf("%w: zstd reserved block type at offset %d", ErrCorrupt, pos-3)
		}
		if len(src)-pos < n {
			return fmt.Errorf("%w: zstd block truncated (offset %d)", ErrCorrupt, pos)
		}
		pos += n
		if last {
			break
		}
	}
	if h.HasCheckSum {
		pos += 4
	}
	if pos != len(src) {
		return fmt.Errorf("%w: %d bytes after the zstd frame (or frame truncated)", ErrCorrupt, len(src)-pos)
	}
	return nil
}
