// Package modelspec is the model artifact format: the CNCF ModelPack media
// types, the model config, packing a directory into a manifest and layers,
// and planning a safe unpack of any model artifact we can read.
//
// The package does no network I/O. It describes artifacts; the oras package
// moves them.
package modelspec
