package logbuf

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Handler is a slog.Handler that writes one human-readable line per record:
//
//	12:03:04.123 INFO  compiled packages count=12
type Handler struct {
	buf    *Buffer
	level  slog.Leveler
	prefix string // pre-formatted attributes from WithAttrs
	group  string // dotted group prefix from WithGroup
}

// NewHandler returns a handler that writes records at or above level into buf.
func NewHandler(buf *Buffer, level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{buf: buf, level: level}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	line := make([]byte, 0, 128)
	line = appendTime(line, r.Time)
	line = append(line, ' ')
	lvl := r.Level.String()
	line = append(line, lvl...)
	for i := len(lvl); i < 5; i++ {
		line = append(line, ' ')
	}
	line = append(line, ' ')
	line = append(line, r.Message...)
	line = append(line, h.prefix...)
	r.Attrs(func(a slog.Attr) bool {
		line = appendAttr(line, h.group, a)
		return true
	})
	line = append(line, '\n')
	_, err := h.buf.Write(line)
	return err
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	b := []byte(h.prefix)
	for _, a := range attrs {
		b = appendAttr(b, h.group, a)
	}
	h2.prefix = string(b)
	return &h2
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

func appendAttr(dst []byte, group string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return dst
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g = group + a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			dst = appendAttr(dst, g, ga)
		}
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, group...)
	dst = append(dst, a.Key...)
	dst = append(dst, '=')
	s := a.Value.String()
	if needsQuote(s) {
		return strconv.AppendQuote(dst, s)
	}
	return append(dst, s...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	return !utf8.ValidString(s) || strings.ContainsAny(s, " \t\r\n\"=\\")
}
