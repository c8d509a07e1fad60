// Package packer holds the Packer template of the Sallyport appliance image
// (the *.pkr.hcl files beside this one), its provisioning scripts, its
// systemd units and the tests of its first-boot script. It has no Go code of
// its own: firstboot_test.go runs scripts/sallyport-firstboot.sh against a
// temporary root with stubbed inputs, so `go test ./...` covers it.
package packer
