from rastro_normalization.app import main

main()
