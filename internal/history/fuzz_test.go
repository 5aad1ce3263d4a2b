package history

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzLoad(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sample()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	for i := 1; i < len(lines); i += 3 {
		f.Add(bytes.Join(lines[:i], nil))
	}
	f.Add([]byte(`{"time":1,"process":"n","type":"info","kind":"nemesis-start"}`))
	f.Add([]byte(`{"time":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Load(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever loads must survive a round trip unchanged.
		var out bytes.Buffer
		if err := Write(&out, h.Events); err != nil {
			t.Fatalf("write of a loaded history: %v", err)
		}
		h2, err := Load(&out)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if !reflect.DeepEqual(h.Events, h2.Events) || !reflect.DeepEqual(h.Ops, h2.Ops) {
			t.Fatalf("round trip changed the history")
		}
	})
}

func FuzzLoadDrains(f *testing.F) {
	var buf bytes.Buffer
	w := NewDrainWriter(&buf)
	for _, d := range sampleDrains() {
		if err := w.WriteDrain(d); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"drain":"begin","log":"a"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := LoadDrains(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		w := NewDrainWriter(&out)
		for _, d := range ds {
			if err := w.WriteDrain(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ds2, err := LoadDrains(&out)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if !reflect.DeepEqual(ds, ds2) {
			t.Fatalf("round trip changed the drains")
		}
	})
}
