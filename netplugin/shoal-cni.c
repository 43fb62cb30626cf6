// SPDX-License-Identifier: Apache-2.0
/* shoal-cni: CNI 1.0.0 plugin sharing netplugin/ with shoald. (VERSION only, for now.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	const char *cmd = getenv("CNI_COMMAND");

	if (cmd && !strcmp(cmd, "VERSION")) {
		printf("{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}\n");
		return 0;
	}
	printf("{\"cniVersion\":\"1.0.0\",\"code\":4,\"msg\":\"unsupported CNI_COMMAND\","
	       "\"details\":\"%s\"}\n", cmd ? cmd : "(unset)");
	return 1;
}
