package bugs

import "testing"

func TestSwitches(t *testing.T) {
	for _, n := range All {
		if On(n) {
			t.Fatalf("%s on by default", n)
		}
	}
	err := Set(AckBeforeFsync, true)
	if !Available {
		if err == nil {
			t.Fatal("Set succeeded without the dlogbugs tag")
		}
		return
	}
	if err != nil || !On(AckBeforeFsync) {
		t.Fatalf("Set: %v", err)
	}
	Set(AckBeforeFsync, false)
	if Set("no-such-bug", true) == nil {
		t.Fatal("unknown switch accepted")
	}
}
