package bookie

import (
	"fmt"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// rejection is a definite refusal of a malformed request.
type rejection struct {
	status bookiepb.Status
	msg    string
}

func badRequest(format string, args ...any) *rejection {
	return &rejection{status: bookiepb.Status_STATUS_BAD_REQUEST, msg: fmt.Sprintf(format, args...)}
}

// validateRequest checks everything about a request that does not depend
// on the bookie's state: a body is present, ids are non-negative (entry id
// -1 only where it means "last"), LACs are >= -1 and below the entry they
// ride on, master keys are at most MaxMasterKeyBytes, an added entry is at
// most maxEntryBytes (else STATUS_TOO_LARGE) and its checksum verifies. It
// returns nil for a well-formed request. It is pure: no I/O, no state.
func validateRequest(req *bookiepb.Request, maxEntryBytes int) *rejection {
	switch b := req.GetBody().(type) {
	case nil:
		return badRequest("request without a body")
	case *bookiepb.Request_Add:
		a := b.Add
		e := a.GetEntry()
		switch {
		case a == nil || e == nil:
			return badRequest("add without an entry")
		case e.LedgerId < 0 || e.EntryId < 0:
			return badRequest("add: negative id %d:%d", e.LedgerId, e.EntryId)
		case e.Lac < -1:
			return badRequest("add %d:%d: lac %d below -1", e.LedgerId, e.EntryId, e.Lac)
		case e.Lac >= e.EntryId:
			return badRequest("add %d:%d: lac %d not below the entry id", e.LedgerId, e.EntryId, e.Lac)
		case len(a.MasterKey) > MaxMasterKeyBytes:
			return badRequest("add %d:%d: master key of %d bytes, limit %d", e.LedgerId, e.EntryId, len(a.MasterKey), MaxMasterKeyBytes)
		case len(e.Payload) > maxEntryBytes:
			return &rejection{status: bookiepb.Status_STATUS_TOO_LARGE,
				msg: fmt.Sprintf("add %d:%d: payload of %d bytes, limit %d", e.LedgerId, e.EntryId, len(e.Payload), maxEntryBytes)}
		case !e.Verify():
			return badRequest("add %d:%d: checksum mismatch", e.LedgerId, e.EntryId)
		}
	case *bookiepb.Request_Read:
		r := b.Read
		switch {
		case r == nil:
			return badRequest("read without a body")
		case r.LedgerId < 0 || r.EntryId < -1:
			return badRequest("read: bad id %d:%d", r.LedgerId, r.EntryId)
		case len(r.MasterKey) > MaxMasterKeyBytes:
			return badRequest("read %d: master key of %d bytes, limit %d", r.LedgerId, len(r.MasterKey), MaxMasterKeyBytes)
		}
	case *bookiepb.Request_ReadLac:
		r := b.ReadLac
		switch {
		case r == nil:
			return badRequest("read-lac without a body")
		case r.LedgerId < 0:
			return badRequest("read-lac: negative ledger id %d", r.LedgerId)
		case r.PreviousLac < -1:
			return badRequest("read-lac %d: previous lac %d below -1", r.LedgerId, r.PreviousLac)
		}
	case *bookiepb.Request_WriteLac:
		w := b.WriteLac
		switch {
		case w == nil:
			return badRequest("write-lac without a body")
		case w.LedgerId < 0:
			return badRequest("write-lac: negative ledger id %d", w.LedgerId)
		case w.Lac < -1:
			return badRequest("write-lac %d: lac %d below -1", w.LedgerId, w.Lac)
		case len(w.MasterKey) > MaxMasterKeyBytes:
			return badRequest("write-lac %d: master key of %d bytes, limit %d", w.LedgerId, len(w.MasterKey), MaxMasterKeyBytes)
		}
	case *bookiepb.Request_Delete:
		if b.Delete == nil || b.Delete.LedgerId < 0 {
			return badRequest("delete: bad ledger id %d", b.Delete.GetLedgerId())
		}
	case *bookiepb.Request_Info:
	default:
		return badRequest("unknown request body %T", b)
	}
	return nil
}

// masterKey normalises a request's master key: protobuf decodes an empty
// bytes field as nil, but an empty key is a key (the ledger store treats nil
// as "none recorded").
func masterKey(k []byte) []byte {
	if k == nil {
		return []byte{}
	}
	return k
}
