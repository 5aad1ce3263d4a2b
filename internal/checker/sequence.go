package checker

import (
	"fmt"

	"github.com/dlog-io/dlog/internal/history"
)

// sequence checks sequence ids and txids against the drain:
//
//   - sequence-id: drain sequence ids go up by one per record; the first is
//     0 if the log was never truncated; a segment's first record (if the
//     segment is not truncated) has the segment's start sequence id; every
//     read or acknowledgement that reports a sequence id for a drain
//     record's DLSN and value agrees with the drain.
//   - txid: drain txids never decrease; every read or acknowledged append
//     of a drain record's DLSN and value has the drain's txid.
func (c *checker) sequence(l *logData) {
	if l.drain == nil {
		return
	}
	recs := l.drain.Records
	firstOfSeg := map[int64]bool{}
	for i, r := range recs {
		switch {
		case i == 0 && !l.tFinal.IsValid() && r.SeqID != 0:
			c.add(PropSequenceID, l.name, func() Example {
				return Example{Value: r.Value, DLSN: r.DLSN.String(),
					Detail: fmt.Sprintf("the log was never truncated but its first record has sequence id %d", r.SeqID),
					Drain:  recs[:1]}
			})
		case i > 0 && r.SeqID != recs[i-1].SeqID+1:
			c.add(PropSequenceID, l.name, func() Example {
				return Example{Value: r.Value, DLSN: r.DLSN.String(),
					Detail: fmt.Sprintf("drain sequence id %d follows %d", r.SeqID, recs[i-1].SeqID),
					Drain:  recs[i-1 : i+1]}
			})
		}
		if i > 0 && r.TxID < recs[i-1].TxID {
			c.add(PropTxID, l.name, func() Example {
				return Example{Value: r.Value, DLSN: r.DLSN.String(),
					Detail: fmt.Sprintf("drain txid %d follows %d", r.TxID, recs[i-1].TxID),
					Drain:  recs[i-1 : i+1]}
			})
		}
		if !firstOfSeg[r.DLSN.LSSN] {
			firstOfSeg[r.DLSN.LSSN] = true
			seg := l.segments[r.DLSN.LSSN]
			segStart := r.DLSN
			segStart.EntryID, segStart.SlotID = 0, 0
			if seg != nil && seg.StartSeqID != nil && !segStart.Less(l.tFinal) && r.SeqID != *seg.StartSeqID {
				c.add(PropSequenceID, l.name, func() Example {
					return Example{Value: r.Value, DLSN: r.DLSN.String(),
						Detail: fmt.Sprintf("segment %d starts at sequence id %d but its first record has %d", seg.LSSN, *seg.StartSeqID, r.SeqID),
						Drain:  []history.DrainRecord{r}}
				})
			}
		}
	}
	for i := range l.reads {
		r := &l.reads[i]
		j, ok := l.drainAt[r.dlsn]
		if !ok || recs[j].Value != r.value {
			continue
		}
		d := recs[j]
		if r.seqid != nil && *r.seqid != d.SeqID {
			c.add(PropSequenceID, l.name, func() Example {
				return Example{Value: r.value, DLSN: r.dlsn.String(),
					Detail: fmt.Sprintf("session %s read sequence id %d at %s; the drain has %d", r.session.id, *r.seqid, r.dlsn, d.SeqID),
					Events: c.evs(r.ev), Drain: []history.DrainRecord{d}}
			})
		}
		if r.txid != d.TxID {
			c.add(PropTxID, l.name, func() Example {
				return Example{Value: r.value, DLSN: r.dlsn.String(),
					Detail: fmt.Sprintf("session %s read txid %d at %s; the drain has %d", r.session.id, r.txid, r.dlsn, d.TxID),
					Events: c.evs(r.ev), Drain: []history.DrainRecord{d}}
			})
		}
	}
	for _, a := range l.attempts {
		if a.status != stOK {
			continue
		}
		j, ok := l.drainAt[a.dlsn]
		if !ok || recs[j].Value != a.value {
			continue
		}
		d := recs[j]
		if a.seqid != nil && *a.seqid != d.SeqID {
			c.add(PropSequenceID, l.name, func() Example {
				return Example{Value: a.value, DLSN: a.dlsn.String(),
					Detail: fmt.Sprintf("acknowledged with sequence id %d; the drain has %d", *a.seqid, d.SeqID),
					Events: c.attemptEvents(a), Drain: []history.DrainRecord{d}}
			})
		}
		if a.txid != d.TxID {
			c.add(PropTxID, l.name, func() Example {
				return Example{Value: a.value, DLSN: a.dlsn.String(),
					Detail: fmt.Sprintf("appended with txid %d; the drain has %d", a.txid, d.TxID),
					Events: c.attemptEvents(a), Drain: []history.DrainRecord{d}}
			})
		}
	}
}
