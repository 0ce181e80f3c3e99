package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"redis://user:s3cret@host:6379/0", "redis://user:xxxxx@host:6379/0"},
		{"redis://:s3cret@host:6379", "redis://:xxxxx@host:6379"},
		{"redis://user@host:6379", "redis://user@host:6379"},
		{"redis://host:6379/0?password=s3cret&dial_timeout=3s", "redis://host:6379/0?password=xxxxx&dial_timeout=3s"},
		{"rediss://u:p4ss@host/0?Access-Key=abc&token=t0k&db=2", "rediss://u:xxxxx@host/0?Access-Key=xxxxx&token=xxxxx&db=2"},
		{"redis://h/?sentinel_password=zz9", "redis://h/?sentinel_password=xxxxx"},
		{"redis://:pw@[bad", "(unparsable URL)"},
		{"not a url", "not a url"},
	}
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestString(t *testing.T) {
	for _, raw := range []string{
		"redis://user:hunter2-pw@host:1/0",
		"redis://host:1/0?password=hunter2-pw",
		"redis://host:1/0?pass=hunter2%2Fpw",
		"redis://:hunter2-pw@[bad",
		"redis://:hunter2%40pw@host:1",
	} {
		msgs := []string{
			"parse " + raw + ": invalid port",
			`parse "` + raw + `": bad`,
			"dial tcp: lookup hunter2-pw: no such host",
			"password hunter2/pw rejected",
			"wrong: hunter2@pw",
		}
		for _, m := range msgs {
			got := String(m, raw)
			for _, secret := range []string{"hunter2-pw", "hunter2/pw", "hunter2%2Fpw", "hunter2@pw", "hunter2%40pw"} {
				if strings.Contains(raw, secret) || strings.Contains(raw, strings.ReplaceAll(secret, "/", "%2F")) || strings.Contains(raw, strings.ReplaceAll(secret, "@", "%40")) {
					if strings.Contains(got, secret) {
						t.Errorf("String(%q, %q) = %q shows %q", m, raw, got, secret)
					}
				}
			}
		}
	}
	// URLs the caller did not name are redacted too.
	if got := String("failed: redis://a:zz-top-secret@h:1 refused"); strings.Contains(got, "zz-top-secret") {
		t.Errorf("unnamed URL kept its password: %q", got)
	}
	if got := String("nothing secret here", ""); got != "nothing secret here" {
		t.Errorf("plain text changed: %q", got)
	}
}

func FuzzURL(f *testing.F) {
	for _, s := range []string{"redis://u:p@h:1/0?password=x", "rediss://:pw@[::1]:6379", "redis://h?token=a&b=c", "%zz", "redis:u:p@h"} {
		f.Add(s, "secretvalue")
		f.Add(s, "0000")
	}
	f.Fuzz(func(t *testing.T, prefix, secret string) {
		// The secret must hold a letter escaping never produces, so that
		// finding it in the output means it leaked.
		if !strings.ContainsAny(secret, "ghijklmnopqrstuvwyzGHIJKLMNOPQRSTUVWYZ") || len(secret) < 3 || strings.ContainsAny(secret, "@:/?#&=[]%") || strings.Contains(Mask, secret) || strings.Contains(prefix, secret) {
			return
		}
		for _, raw := range []string{"redis://user:" + secret + "@" + prefix, "redis://" + prefix + "?password=" + secret} {
			if strings.Contains(URL(raw), secret) {
				t.Fatalf("URL(%q) = %q shows the secret", raw, URL(raw))
			}
			if got := String("error: "+raw+" failed", raw); strings.Contains(got, secret) {
				t.Fatalf("String shows the secret: %q", got)
			}
		}
	})
}

func TestURLHidesPasswordsOfURLsInTheQuery(t *testing.T) {
	raw := "s3://bucket/p?endpoint=http://key:hunter2@127.0.0.1:9000&region=x"
	got := URL(raw)
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "127.0.0.1") || !strings.Contains(got, "region=x") {
		t.Errorf("URL(%q) = %s", raw, got)
	}
	msg := String("open "+raw+": refused", raw)
	if strings.Contains(msg, "hunter2") {
		t.Errorf("String = %s", msg)
	}
}

// TestURLHidesPasswordsOfEncodedURLsInTheQuery: a URL inside a parameter
// may be percent-encoded (endpoint=http%3A%2F%2Fkey%3Ahunter2%40host, as
// url.Values.Encode writes it); its password is hidden too.
func TestURLHidesPasswordsOfEncodedURLsInTheQuery(t *testing.T) {
	for _, raw := range []string{
		"s3://bucket/p?endpoint=http%3A%2F%2Fkey%3Ahunter2%40127.0.0.1%3A9000&region=x",
		"s3://bucket/p?region=x&endpoint=http%3A%2F%2Fkey%3Ahunter2%40127.0.0.1%3A9000",
	} {
		got := URL(raw)
		if strings.Contains(got, "hunter2") || !strings.Contains(got, "127.0.0.1") || !strings.Contains(got, "region=x") {
			t.Errorf("URL(%q) = %s", raw, got)
		}
		msg := String("open "+raw+": refused", raw)
		if strings.Contains(msg, "hunter2") {
			t.Errorf("String = %s", msg)
		}
	}
}
