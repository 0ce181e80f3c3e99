package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

type emptyResult struct{}

type selfEncoding struct{}

func (selfEncoding) MarshalJSON() ([]byte, error) { return []byte(`"self"`), nil }

type selfEncodingPtr struct{}

func (*selfEncodingPtr) MarshalJSON() ([]byte, error) { return []byte(`"ptr"`), nil }

type textEncoding struct{}

func (textEncoding) MarshalText() ([]byte, error) { return []byte("text"), nil }

type withField struct{ N int }

// marshalValue must give what json.Marshal gives, whatever the value: its
// shortcut for empty structs leaves alone the types that encode themselves.
func TestMarshalValueMatchesJSON(t *testing.T) {
	for _, v := range []any{
		emptyResult{}, struct{}{}, selfEncoding{}, &selfEncodingPtr{}, selfEncodingPtr{}, textEncoding{},
		withField{3}, &emptyResult{}, nil, 7, "s", []emptyResult{{}}, map[string]emptyResult{"k": {}},
	} {
		want, werr := json.Marshal(v)
		got, gerr := marshalValue(v)
		if !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) {
			t.Errorf("marshalValue(%#v) = %s, %v; json.Marshal gives %s, %v", v, got, gerr, want, werr)
		}
	}
	if got, err := marshalValue(make(chan int)); err == nil {
		t.Errorf("marshalValue(chan) = %s, want json.Marshal's error", got)
	}
}

// BenchmarkConvertPerModule is what the cluster package does with one
// no-op module's outcome on both sides: the worker's resultOf and
// Values.Put, the master's outcomeOf.
func BenchmarkConvertPerModule(b *testing.B) {
	const run = 4096 // modules per run: a fresh cache for each
	names := make([]string, run)
	for i := range names {
		names[i] = fmt.Sprintf("m%05d", i)
	}
	now := time.Now()
	var vs *Values
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%run == 0 {
			vs = NewValuesFor(nil, run)
		}
		name := names[i%run]
		cl := distributed.Claim{Assignment: distributed.Assignment{Module: name, Attempt: 1}, Lease: distributed.Lease{Attempt: 1, Holder: 1}}
		o := engine.Outcome{Status: engine.Succeeded, Value: emptyResult{}, Attempts: 1, Start: now, End: now}
		res, raw := resultOf(cl, &o, nil, 1)
		vs.Put(name, o.Value, raw)
		if back := outcomeOf(res, now); back.Status != engine.Succeeded {
			b.Fatalf("outcome %v, want succeeded", back.Status)
		}
		i++
	}
}
