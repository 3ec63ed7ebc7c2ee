// Package jsondec decodes JSON into Go values of common shapes faster than
// encoding/json, with identical results whenever it succeeds.
//
// encoding/json validates its whole input before decoding and walks values
// through reflect.Value; for the small payloads of channel broadcasts both
// costs outweigh the decoding itself. This package decodes in one pass,
// through a plan built once per type, and gives up (reports false) on every
// input or type whose meaning it does not reproduce exactly: the caller then
// decodes with encoding/json, which also produces the error to report.
//
// Handled natively: structs (exported fields, json tag names), string, bool,
// every int and uint kind, float32 and float64, json.RawMessage, pointers,
// and slices of those. A field of any other type (interfaces, maps, arrays,
// []byte, types with UnmarshalJSON or UnmarshalText) is fine as long as the
// input does not carry it; a struct with embedded fields, a ",string" tag
// option or two fields of the same JSON name is never decoded here.
package jsondec
