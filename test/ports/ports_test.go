package ports

import "testing"

func TestFreeBelowEphemeralRangeAndDistinct(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 50 {
		p := Free()
		if p == 0 {
			t.Fatal("no port")
		}
		if p < lowestPort || p >= low {
			t.Fatalf("port %d outside [%d, %d): the kernel may hand it to an outgoing connection", p, lowestPort, low)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
