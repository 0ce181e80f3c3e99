package secret

import "testing"

func TestMasking(t *testing.T) {
	var s Set
	if got := s.String("nothing registered"); got != "nothing registered" {
		t.Errorf("%q", got)
	}
	s.Add("token", "token-extended", "ab", "")
	for in, want := range map[string]string{
		"use token-extended now": "use *** now",
		"token and token":        "*** and ***",
		"ab is too short":        "ab is too short",
	} {
		if got := s.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}
