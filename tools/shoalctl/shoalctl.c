// SPDX-License-Identifier: Apache-2.0
/* shoalctl: the command-line client. One file per subcommand, a command table here. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "version")) {
		printf("shoalctl v0.1.0\n");
		return 0;
	}
	fprintf(stderr, "usage: shoalctl version\n");
	return 2;
}
