/* The container payload of the lifecycle scenario: exits 0 at once. Built with gcc -static. */
int main(void) { return 0; }
