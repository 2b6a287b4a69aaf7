package agent

import "testing"

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"family", "famly", 1},
		{"family", "fmaily", 2},
		{"family", "family", 0},
		{"family", "garden", 5},
		{"", "abc", 3},
		{"séjour", "sejour", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
