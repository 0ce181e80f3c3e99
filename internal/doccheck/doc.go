// Package doccheck holds a test, not code: it walks every package of the
// module (bench/, a separate module, and testdata aside) and fails on an
// exported name without a doc comment, or a package without a package
// comment, so that go doc shows nothing undocumented.
package doccheck
