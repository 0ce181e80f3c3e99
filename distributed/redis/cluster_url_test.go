package redis

import "testing"

func TestClusterURL(t *testing.T) {
	for _, tc := range []struct{ scheme, rest, want string }{
		{"redis", "h1:7000", "redis://h1:7000"},
		{"redis", "h1:7000,h2:7001,h3:7002", "redis://h1:7000?addr=h2:7001&addr=h3:7002"},
		{"rediss", "u:p@h1:7000,h2:7001/?dial_timeout=3s", "rediss://u:p@h1:7000/?addr=h2:7001&dial_timeout=3s"},
		{"redis", ":p%40x@h1:7000,", "redis://:p%40x@h1:7000"},
	} {
		if got := clusterURL(tc.scheme, tc.rest); got != tc.want {
			t.Errorf("clusterURL(%q, %q) = %q, want %q", tc.scheme, tc.rest, got, tc.want)
		}
	}
}
