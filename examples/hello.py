"""hello.py: one pool, one atomic exclusive page, written through a
memoryview (the page itself, no copy), freed; then the pool's statistics."""
import labyrinth

with labyrinth.Pool(16 << 20) as pool:  # a 16 MiB arena
    page = pool.alloc_page()  # atomic, exclusive, 4 KiB
    with memoryview(page) as view:
        view[:11] = b"hello, page"
        print(bytes(view[:11]).decode(), "at", hex(page.address))
    page.free()  # refused (Busy) while a view of the page is alive
    stats = pool.stats()
    print(stats.free_pages, "of", stats.total_pages, "pages free")
