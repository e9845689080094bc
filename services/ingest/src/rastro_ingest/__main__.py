from rastro_ingest.app import main

main()
