/* SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only */
/*
 * Bob Jenkins' lookup3 final mix over three words (as the kernel's jhash_3words): the flow hash
 * that indexes Maglev tables. Deterministic, so every node computes the same one for a flow.
 * User space has a copy in bpf/nodeport.c for tests and `shoalctl` lookups.
 */
#ifndef SHOAL_BPF_LIB_JHASH_H
#define SHOAL_BPF_LIB_JHASH_H

#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 jhash_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> ((-s) & 31));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += JHASH_INITVAL + (3 << 2) + initval;
	b += JHASH_INITVAL + (3 << 2) + initval;
	c += JHASH_INITVAL + (3 << 2) + initval;
	c ^= b; c -= jhash_rol32(b, 14);
	a ^= c; a -= jhash_rol32(c, 11);
	b ^= a; b -= jhash_rol32(a, 25);
	c ^= b; c -= jhash_rol32(b, 16);
	a ^= c; a -= jhash_rol32(c, 4);
	b ^= a; b -= jhash_rol32(a, 14);
	c ^= b; c -= jhash_rol32(b, 24);
	return c;
}

#endif
