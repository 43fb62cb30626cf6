// SPDX-License-Identifier: Apache-2.0
/* shoal-shim: per-container supervisor started by the crun driver (daemon/crun.h). */
#include "daemon/crun.h"

int main(int argc, char **argv)
{
	return crun_shim_main(argc, argv);
}
