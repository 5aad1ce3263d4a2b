package verify

import (
	"bytes"
	"strings"
)

// padByte fills payloads past the value id.
const padByte = '.'

// Payload is the record payload carrying value id v: the id, then, if pad
// > 0, a '|' and pad filler bytes. Value ids are unique per run ("w3-1042"),
// so every delivered record names the append it came from.
func Payload(v string, pad int) []byte {
	if pad <= 0 {
		return []byte(v)
	}
	b := make([]byte, len(v)+1+pad)
	copy(b, v)
	b[len(v)] = '|'
	for i := len(v) + 1; i < len(b); i++ {
		b[i] = padByte
	}
	return b
}

// ValueOf returns the value id of a payload made by Payload. A payload
// the harness did not write is returned quoted after "?" so that the
// checker reports it as a phantom instead of the harness failing.
func ValueOf(p []byte) string {
	if i := bytes.IndexByte(p, '|'); i >= 0 {
		p = p[:i]
	}
	s := string(p)
	if !validValue(s) {
		return "?" + strings.ToValidUTF8(s, "\ufffd")
	}
	return s
}

func validValue(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
