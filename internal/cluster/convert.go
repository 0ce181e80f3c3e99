package cluster

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

var toWire = map[engine.Status]distributed.Status{
	engine.Succeeded: distributed.StatusSucceeded,
	engine.Failed:    distributed.StatusFailed,
	engine.Skipped:   distributed.StatusSkipped,
	engine.TimedOut:  distributed.StatusTimedOut,
	engine.Cancelled: distributed.StatusCancelled,
	// Exec never produces IgnoredFailure (the master's scheduler decides
	// it), but a failure is a failure on the wire.
	engine.IgnoredFailure: distributed.StatusFailed,
}

var fromWire = map[distributed.Status]engine.Status{
	distributed.StatusSucceeded: engine.Succeeded,
	distributed.StatusFailed:    engine.Failed,
	distributed.StatusSkipped:   engine.Skipped,
	distributed.StatusTimedOut:  engine.TimedOut,
	distributed.StatusCancelled: engine.Cancelled,
}

var kinds = map[string]engine.Kind{"error": engine.KindError, "timeout": engine.KindTimeout, "cancel": engine.KindCancel, "panic": engine.KindPanic}

// resultOf turns an execution's outcome into the message published for it,
// and returns the value's JSON (r.Value is its wire form, compressed when
// large). A value that cannot be encoded as JSON, or is too large, fails
// the module.
func resultOf(cl distributed.Claim, o *engine.Outcome, log []byte, instance int) (r distributed.Result, raw []byte) {
	r = distributed.Result{
		Module: cl.Assignment.Module, Lease: cl.Lease, Status: toWire[o.Status],
		Reason: o.Reason, Attempts: o.Attempts, Duration: o.End.Sub(o.Start), QueueWait: cl.QueueWait,
		Log: tail(log, distributed.MaxLogSize),
	}
	if o.Status == engine.Succeeded {
		var err error
		raw, err = marshalValue(o.Value)
		var wire []byte
		if err == nil {
			wire, err = encodeValue(r.Module, raw)
		} else {
			err = fmt.Errorf("result of %s cannot be encoded as JSON to reach other instances: %w", r.Module, err)
		}
		if err != nil {
			r.Status, raw = distributed.StatusFailed, nil
			r.Error = &distributed.ErrorInfo{Message: err.Error(), Kind: "error", Instance: instance}
		} else {
			r.Value = wire
		}
	}
	if o.Err != nil && r.Error == nil {
		var remote *distributed.ErrorInfo
		if errors.As(o.Err, &remote) {
			r.Error = remote
		} else {
			r.Error = &distributed.ErrorInfo{Message: o.Err.Error(), Kind: o.Kind.String(), Instance: instance}
		}
		if r.Error.Kind == "" {
			r.Error.Kind = "error"
		}
	}
	return r, raw
}

// marshalValue is json.Marshal, without its reflection for the value of
// every Task: an empty struct that does not encode itself is "{}".
func marshalValue(v any) ([]byte, error) {
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Struct && t.NumField() == 0 && !encodesItself(t) {
		return []byte("{}"), nil
	}
	return json.Marshal(v)
}

// encodesItself reports whether json.Marshal may call a method of t (or
// of *t) rather than encode its fields.
func encodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || p.Implements(jsonMarshaler) || t.Implements(textMarshaler) || p.Implements(textMarshaler)
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// outcomeOf turns a published result into the master's outcome.
func outcomeOf(res distributed.Result, received time.Time) engine.Outcome {
	o := engine.Outcome{
		Status: fromWire[res.Status], Reason: res.Reason, Instance: res.Lease.Holder,
		Attempts: res.Attempts + res.Lease.Attempt - 1, Dispatches: res.Lease.Attempt,
		Start: received.Add(-res.Duration), End: received, QueueWait: res.QueueWait,
	}
	if res.Status == distributed.StatusSucceeded {
		raw, err := decodeValue(res.Module, res.Value)
		if err != nil {
			o.Status, o.Kind, o.Err = engine.Failed, engine.KindError, err
			return o
		}
		o.Value = RawValue(raw)
	}
	if res.Error != nil {
		e := *res.Error
		o.Err, o.Kind = &e, kinds[e.Kind]
	}
	return o
}

// RawValue is a result that arrived as JSON; Result[T] decodes it.
type RawValue []byte

// tail returns the last limit bytes of p, starting at a line boundary, with
// a note that the head was cut.
func tail(p []byte, limit int) []byte {
	if len(p) <= limit {
		return p
	}
	const note = "… (earlier log lines cut)\n"
	p = p[len(p)-limit+len(note):]
	for i, b := range p {
		if b == '\n' {
			p = p[i+1:]
			break
		}
	}
	return append([]byte(note), p...)
}
